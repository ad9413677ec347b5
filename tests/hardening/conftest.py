"""The serving fixtures (a small random model) for the hardening tests."""
from ..serve.conftest import segmenter, serve_model_file  # noqa: F401
