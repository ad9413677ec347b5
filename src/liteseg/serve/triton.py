"""``liteseg serve --engine triton``: the model inside a real NVIDIA Triton Inference Server, started through
PyTriton (``pip install 'liteseg[triton]'``: nvidia-pytriton's wheel bundles tritonserver and its Python backend).

The server loads the Python-backend model that ``liteseg export --format triton`` writes (one implementation for
both), from a temporary repository. Triton brings dynamic batching, the KServe v2 HTTP and gRPC endpoints and
Prometheus metrics.
"""
from __future__ import annotations

import os
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LitesegError
from .triton_repo import write_repository


@dataclass
class TritonOptions:
    """Where Triton listens and how the model batches."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_pixels: int = 4096 * 4096
    threads: int | None = None


def python_lib_env() -> None:
    """Put this interpreter's library directory first on ``LD_LIBRARY_PATH``, for the Python-backend stub (without
    it the stub loads the system's libpython, or none, and the model fails to load)."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if libdir and libdir not in paths:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *paths])


def serve_triton(source: Any, options: TritonOptions) -> None:
    """Serve ``source`` in Triton until Ctrl+C / SIGTERM; the temporary repository is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="liteseg-triton-") as folder:
        triton = start_triton(source, options, Path(folder) / "repo", write=True)
        try:
            triton.serve()
        finally:
            triton.stop()


def start_triton(source: Any, options: TritonOptions, repository: str | Path, write: bool = True) -> Any:
    """A started PyTriton ``Triton`` serving ``source`` as the model ``liteseg`` (call ``.stop()`` when done).

    ``write``: write the Python-backend repository for ``source`` to ``repository`` first; else serve the one there
    (from ``liteseg export --format triton``; ``source`` is unused).
    """
    try:
        from pytriton.triton import Triton, TritonConfig
    except ImportError:
        raise LitesegError("--engine triton needs nvidia-pytriton (and numpy < 2): pip install 'liteseg[triton]'") \
            from None
    if write:
        write_repository(source, repository, onnx=False, max_batch=options.max_batch,
                         max_wait_ms=options.max_wait_ms, max_pixels=options.max_pixels, threads=options.threads,
                         import_path=str(Path(__file__).resolve().parents[2]))  # this liteseg
    python_lib_env()
    config = TritonConfig(model_repository=Path(repository), http_address=options.host, http_port=options.http_port,
                          grpc_address=options.host, grpc_port=options.grpc_port, metrics_address=options.host,
                          metrics_port=options.metrics_port, exit_on_error=True, exit_timeout_secs=5)
    triton = Triton(config=config)
    triton.run()
    return triton
