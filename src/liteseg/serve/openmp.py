"""One OpenMP thread team per serving process: torch runs on the batcher's inference thread alone.

PyTorch's CPU wheels use GNU OpenMP, which gives every thread that runs a parallel operator its own team of
worker threads, kept for as long as that thread lives. While more such threads exist than the process has CPUs,
libgomp stops spin-waiting between operators and puts its workers to sleep instead, and each of the several
hundred operators of a forward pass then waits for a worker to be woken. In ``liteseg serve`` the model was loaded
on the main thread and run on the batcher's thread: two teams of 2 threads on a 2-core machine, so the model
served slower than the same model called in-process. Loading it in a thread that ends (:func:`in_own_thread`)
and running every model call on the batcher thread (``DynamicBatcher.submit(image, predict)``, e.g. for ``PROBS``)
leaves one team, as in a single-threaded program.
"""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def in_own_thread(fn: Callable[[], T], name: str = "liteseg-load") -> T:
    """``fn()`` run in a new thread that has ended when this returns (its OpenMP team goes with it); its result,
    or its exception re-raised here."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
