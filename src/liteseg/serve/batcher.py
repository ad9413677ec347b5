"""Dynamic batching: concurrent requests are gathered into model batches on one inference thread per process."""
from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..inference.segmenter import SegResult
from .errors import ApiError
from .telemetry import ServeMetrics

log = logging.getLogger("liteseg")

PredictFn = Callable[[Sequence[np.ndarray]], list[SegResult]]


@dataclass
class _Job:
    image: np.ndarray
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)
    predict: PredictFn | None = None  # another model function for this image (it runs alone, on this thread)


class DynamicBatcher:
    """Runs ``predict`` on batches of up to ``max_batch`` images gathered within ``max_wait_ms`` of the first.

    At most ``max_queue`` images may wait or run at once; more are refused with a 503 and a ``Retry-After``
    estimate. Images of different sizes are batched separately unless ``any_size`` (the model resizes all inputs
    to one size). ``close()`` finishes every accepted image before it returns. Every model call of the process
    belongs on this one thread (see :mod:`liteseg.serve.openmp`): ``submit(image, predict)`` runs another model
    function here too.
    """

    def __init__(self, predict: PredictFn, max_batch: int = 8, max_wait_ms: float = 5.0, max_queue: int = 64,
                 any_size: bool = False, metrics: ServeMetrics | None = None) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.predict, self.any_size, self.metrics = predict, any_size, metrics
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000.0, max_queue
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False
        self._batch_seconds = 0.0  # moving average of one forward pass, for Retry-After
        self._thread = threading.Thread(target=self._loop, name="liteseg-batcher", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Images accepted and not yet answered."""
        return self._pending

    @property
    def running(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def queue_full(self, waiting: int) -> ApiError:
        """The 503 for a request over the limit, with a ``Retry-After`` from the recent batch times."""
        wait = max(1, math.ceil(waiting / self.max_batch * self._batch_seconds))
        return ApiError(503, "queue_full", f"{waiting} images are already queued or running (limit {self.max_queue}, "
                        f"--max-queue); retry after {wait} s", {"Retry-After": str(wait)})

    def submit(self, image: np.ndarray, predict: PredictFn | None = None) -> Future:
        """Queue one RGB uint8 image (for ``predict``, else the batcher's model); the future resolves to its
        ``SegResult``. After :meth:`close` it raises the 503 ``shutting_down``: an image is either refused here or
        queued ahead of the stop signal, so answered."""
        job = _Job(image, predict=predict)
        with self._lock:  # the put is inside: close() cannot slip its stop signal between the check and the put
            if self._closed:
                raise ApiError(503, "shutting_down", "the server is shutting down; retry on another instance",
                               {"Retry-After": "1"})
            if self._pending >= self.max_queue:
                raise self.queue_full(self._pending)
            self._pending += 1
            if self.metrics is not None:
                self.metrics.queue.inc()
            self._queue.put(job)
        return job.future

    async def segment(self, image: np.ndarray, predict: PredictFn | None = None) -> SegResult:
        """Await the segmentation of one image without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(image, predict))

    def close(self, timeout: float | None = None) -> None:
        """Refuse new images, finish the accepted ones, stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)  # after every accepted image: submit() puts under the same lock
        self._thread.join(timeout)

    def _loop(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                break
            jobs = [job]
            deadline = job.enqueued + self.max_wait
            while len(jobs) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            for group in self._groups(jobs):
                self._run(group)

    def _groups(self, jobs: list[_Job]) -> list[list[_Job]]:
        own = [[job] for job in jobs if job.predict is not None]  # another model function: alone
        shared = [job for job in jobs if job.predict is None]
        if self.any_size:
            return ([shared] if shared else []) + own
        groups: dict[tuple[int, ...], list[_Job]] = {}
        for job in shared:
            groups.setdefault(job.image.shape, []).append(job)
        return list(groups.values()) + own

    def _run(self, group: list[_Job]) -> None:
        start = time.perf_counter()
        jobs = [j for j in group if j.future.set_running_or_notify_cancel()]  # skip requests given up
        try:
            results = (group[0].predict or self.predict)([j.image for j in jobs]) if jobs else []
        except Exception as e:  # a failing batch answers its requests with 500s; the thread keeps serving
            log.exception("inference failed for a batch of %d image(s)", len(jobs))
            for job in jobs:
                job.future.set_exception(e)
        else:
            for job, result in zip(jobs, results):
                job.future.set_result(result)
        finally:
            seconds = time.perf_counter() - start
            self._batch_seconds = seconds if not self._batch_seconds else 0.8 * self._batch_seconds + 0.2 * seconds
            with self._lock:
                self._pending -= len(group)
            if self.metrics is not None:
                self.metrics.queue.dec(len(group))
                if jobs:
                    self.metrics.batch(len(jobs), seconds)
