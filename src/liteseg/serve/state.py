"""What the routers share: the configuration, the metrics, and the model and its batcher once loaded."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..inference.segmenter import Segmenter
from .batcher import DynamicBatcher
from .config import ServeConfig
from .errors import ApiError
from .telemetry import ServeMetrics

log = logging.getLogger("liteseg")


class ServeState:
    """One app's model, batcher and request counts; ``ready`` from :meth:`start` until :meth:`stop`."""

    def __init__(self, config: ServeConfig, metrics: ServeMetrics) -> None:
        self.config, self.metrics = config, metrics
        self.segmenter: Segmenter | None = None
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.uploading = 0  # /v1/segment bodies being received
        self.admitted = 0  # /v1/segment requests being decoded, segmented or encoded

    def start(self, segmenter: Segmenter) -> None:
        """Serve ``segmenter`` through a new batcher."""
        c = self.config
        self.segmenter = segmenter
        self.batcher = DynamicBatcher(segmenter.predict_rgb, c.max_batch, c.max_wait_ms, c.max_queue,
                                      any_size=segmenter.target_hw() is not None, metrics=self.metrics)
        self.ready = True
        log.info("liteseg serve: %s on %s ready (max batch %d, max wait %g ms, max queue %d)", self.model_name(),
                 segmenter.backend.name, c.max_batch, c.max_wait_ms, c.max_queue)

    def stop(self) -> None:
        """Refuse new images and finish the accepted ones."""
        self.ready = False
        if self.batcher is not None:
            self.batcher.close()

    def ready_batcher(self) -> DynamicBatcher:
        """The batcher, or the 503 ``not_ready`` before the model is loaded and while the server stops."""
        if not self.ready or self.batcher is None:
            raise ApiError(503, "not_ready", "the model is not loaded yet or the server is stopping; retry shortly",
                           {"Retry-After": "1"})
        return self.batcher

    @contextmanager
    def receiving_upload(self) -> Iterator[None]:
        """Count an upload being received; the 503 ``uploads_full`` past ``max_uploads`` (slow uploads wait here,
        not in the inference queue)."""
        limit = self.config.max_uploads
        if self.uploading >= limit:
            raise ApiError(503, "uploads_full", f"{self.uploading} uploads are being received (limit {limit}, "
                           "--max-uploads); retry shortly", {"Retry-After": "1"})
        self.uploading += 1
        try:
            yield
        finally:
            self.uploading -= 1

    @contextmanager
    def admitted_request(self, batcher: DynamicBatcher) -> Iterator[None]:
        """Count a request being decoded, segmented or encoded; the 503 ``queue_full`` past ``max_queue`` (this
        bounds the decoded images in memory, not only those in the batcher)."""
        if self.admitted >= self.config.max_queue:
            raise batcher.queue_full(self.admitted)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def loaded_segmenter(self) -> Segmenter:
        """The model being served, or the 503 ``not_ready``."""
        self.ready_batcher()
        assert self.segmenter is not None
        return self.segmenter

    def model_name(self) -> str:
        """The served model's file name (or its architecture when it has no file)."""
        seg = self.segmenter
        assert seg is not None
        return Path(self.config.model or seg.meta.source or seg.meta.arch).name
