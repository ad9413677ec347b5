"""What the routers share: the configuration, the metrics, and the model and its batcher once loaded."""
from __future__ import annotations

import logging
from pathlib import Path

from ..inference.segmenter import Segmenter
from .admission import Admission
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
        # upload and image slots every image route shares (/v1/segment, v2 infer, PaddleX)
        self.slots = Admission(config.max_uploads, config.max_queue, config.upload_grace_s,
                               config.min_upload_kbs * 1024)

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
