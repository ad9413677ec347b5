"""What ``GET /metrics`` reports, through ``prometheus_client`` (Prometheus text format 0.0.4).

Each :class:`ServeMetrics` has its own registry (several apps can live in one process, as in the tests). With
``PROMETHEUS_MULTIPROC_DIR`` set, which ``liteseg serve --workers N`` does, every worker process writes its samples
into that folder and each scrape aggregates all of them: one set of numbers, whichever worker answers. Gauges
are summed over the live workers there (``livesum``).
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger("liteseg")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWN_DIR_ENV = "LITESEG_OWN_METRICS_DIR"  # set when liteseg made the folder: the last worker may remove it
_PR_SET_PDEATHSIG = 1
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
        forget_dead_workers(os.environ[MULTIPROC_ENV])
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged)


def forget_dead_workers(folder: str) -> None:
    """Drop the live gauges (queue, in-flight) of worker processes that no longer exist (``kill -9``)."""
    pids = {int(m.group(1)) for p in Path(folder).glob("gauge_live*_*.db")
            if (m := re.search(r"_(\d+)\.db$", p.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, folder)
            log.info("removed the live metrics of worker %d, which has ended", pid)
        except PermissionError:
            pass


def end_with_parent() -> None:
    """In a worker process: get SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a thread
    watches the parent), and on the way out remove the metrics folder if liteseg made it and the parent is gone."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), name="liteseg-parent-watch", daemon=True).start()
    atexit.register(_orphaned_cleanup, parent)
    if os.getppid() != parent:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _orphaned_cleanup(parent: int) -> None:
    """When a worker stops after its parent died: remove this worker's metrics, and liteseg's folder with them."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or os.getppid() == parent:
        return
    mark_process_dead(os.getpid(), folder)
    if os.environ.get(OWN_DIR_ENV):
        shutil.rmtree(folder, ignore_errors=True)
