"""What ``GET /metrics`` reports, through ``prometheus_client`` (Prometheus text format 0.0.4).

Each :class:`ServeMetrics` has its own registry (several apps can live in one process, as in the tests). With
``PROMETHEUS_MULTIPROC_DIR`` set, which ``liteseg serve --workers N`` does, every worker process writes its samples
into that folder and each scrape aggregates all of them: one set of numbers, whichever worker answers. Gauges
are summed over the live workers there (``livesum``).
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """Request, error, batching and queue metrics of the server (all workers, in multiprocess mode)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("liteseg_requests", "HTTP requests by endpoint, method and status code.",
                                ("endpoint", "method", "status"), registry=r)
        self.latency = Histogram("liteseg_request_duration_seconds", "HTTP request latency in seconds.",
                                 ("endpoint",), buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("liteseg_errors", "Requests answered with an error, by error code.", ("code",),
                              registry=r)
        self.batch_size = Histogram("liteseg_batch_size", "Images per model forward pass.", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.inference = Histogram("liteseg_inference_seconds", "Model forward time per batch in seconds.",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("liteseg_queue_depth", "Images waiting for or in inference.", registry=r,
                           multiprocess_mode="livesum")
        self.inflight = Gauge("liteseg_inflight_requests", "HTTP requests being handled.", registry=r,
                              multiprocess_mode="livesum")

    def request_started(self) -> None:
        self.inflight.inc()

    def request_finished(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.inflight.dec()
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()

    def batch(self, images: int, seconds: float) -> None:
        """One forward pass of ``images`` images that took ``seconds``."""
        self.batch_size.observe(images)
        self.inference.observe(seconds)

    def render(self) -> bytes:
        """The text exposition of this process, or of every worker in multiprocess mode."""
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged)
