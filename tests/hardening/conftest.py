"""The serving fixtures (a small random model, servers in threads) for the hardening tests."""
from ..serve.conftest import segmenter, serve_model, serve_model_file, start_server  # noqa: F401
