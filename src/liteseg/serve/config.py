"""What ``liteseg serve`` configures (:class:`ServeConfig`) and the model it loads from that."""
from __future__ import annotations

from dataclasses import dataclass

from ..inference.budget import DEFAULT_MAX_ASPECT, DEFAULT_MAX_BATCH_PIXELS, DEFAULT_MAX_PIXELS, PixelBudget
from ..inference.segmenter import Segmenter
from .openmp import in_own_thread


@dataclass
class ServeConfig:
    """Everything ``liteseg serve`` configures; also passed to worker processes as JSON."""

    model: str | None = None
    backend: str | None = None  # None: torch, or ONNX Runtime for an .onnx model
    device: str | None = None
    threads: int | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_upload_mb: float = 20.0
    max_aspect: float = DEFAULT_MAX_ASPECT
    max_batch_pixels: int = DEFAULT_MAX_BATCH_PIXELS
    max_uploads: int = 128  # bodies being received at once, apart from the max_queue images past upload
    upload_grace_s: float = 10.0
    min_upload_kbs: float = 16.0  # KiB/s an upload must keep up after the grace period
    allowed_hosts: list[str] | None = None  # Host header values answered (None: any); set for loopback binds
    imgsz: str | None = None  # "WxH" or "native"; None: the model's own size

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def build_segmenter(config: ServeConfig) -> Segmenter:
    """Load the configured model (or the default one) once, batching up to ``max_batch`` images; in a thread that
    ends, so that the batcher's thread holds the process's only OpenMP team (:mod:`.openmp`)."""
    from ..loading.zoo import default_model

    return in_own_thread(lambda: Segmenter(
        config.model or default_model(), backend=config.backend, device=config.device, threads=config.threads,
        batch_size=config.max_batch, imgsz=config.imgsz,
        budget=PixelBudget(config.max_pixels, config.max_aspect, config.max_batch_pixels)))
