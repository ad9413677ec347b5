"""A bounded three-stage pipeline: read ahead in a thread, run the model here, write behind in a thread.

Both helper threads do numpy/PIL work that releases the GIL, so decoding and encoding overlap the model call.
Queues are bounded: at most ``depth`` items wait on either side, whatever the length of the input (a folder of
100,000 images or an hour of video is streamed, never held). An exception in a helper thread is raised in the
caller at its next interaction, and closing either side stops its thread. ``depth=0`` runs a side inline in
the caller's thread (the serial path, same results).
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int = 2, name: str = "liteseg-read") -> Iterator[T]:
    """Iterate ``items`` in a background thread, keeping at most ``depth`` produced items waiting.

    The producer blocks while the queue is full, so at most ``depth + 2`` items exist between the two sides
    (queued, one being produced, one being consumed). Leaving the loop early (``break``, an error, ``close()``)
    stops the producer at its next item. ``depth=0``: no thread, ``items`` is iterated in the caller.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        yield from items
        return
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(obj: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(e))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            obj = buffer.get()
            if obj is _DONE:
                return
            if isinstance(obj, _Failure):
                raise obj.error
            yield obj
    finally:
        stop.set()
        thread.join()


class WriteBehind:
    """Run submitted jobs in order in one background thread, with at most ``depth`` jobs waiting.

    ``submit`` blocks while the queue is full, which bounds memory; the first job that fails stops the thread
    and its exception is raised by the next ``submit`` or by ``close`` (use it as a context manager).
    ``depth=0``: no thread, ``submit`` runs the job at once.
    """

    def __init__(self, depth: int = 2, name: str = "liteseg-write") -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self._jobs: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True) if depth else None
        if self._thread is not None:
            self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _DONE:
                return
            if self._error is not None:
                continue  # drain after a failure so that submit() never blocks forever
            fn, args = job
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the submitting thread
                self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; raises the error of an earlier job, if one failed."""
        self._raise()
        if self._thread is None:
            fn(*args)
            return
        if not self._thread.is_alive():
            raise RuntimeError("the writer is closed")
        self._jobs.put((fn, args))

    def close(self) -> None:
        """Wait for every queued job, stop the thread and raise the first error of a job, if any."""
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(_DONE)
            self._thread.join()
        self._raise()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the caller failed already: finish the queued jobs, its exception is the one to see
            self.close()
        except BaseException:  # noqa: BLE001
            pass
