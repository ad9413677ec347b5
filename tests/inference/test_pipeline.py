"""The bounded read-ahead / write-behind helpers: order, bounds, errors, early stop, inline mode."""
from __future__ import annotations

import itertools
import threading
import time

import pytest

from liteseg.inference.pipeline import WriteBehind, prefetch


def test_prefetch_keeps_order_and_runs_in_another_thread():
    threads = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(50))
    assert threads == {"liteseg-read"}


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetch_reads_at_most_depth_ahead_of_an_endless_source(depth):
    produced = itertools.count()
    state = {"made": 0}

    def endless():  # an hour of video or 100,000 files: never materialised
        while True:
            state["made"] = next(produced) + 1
            yield state["made"]

    stream = prefetch(endless(), depth=depth)
    for consumed, _ in enumerate(stream, start=1):
        time.sleep(0.002)  # a slow consumer: the producer has every chance to run away
        assert state["made"] - consumed <= depth + 1
        if consumed == 40:
            break
    stream.close()
    made = state["made"]
    time.sleep(0.3)
    assert state["made"] == made  # the producer thread stopped


def test_prefetch_raises_the_producers_error_in_the_consumer():
    def broken():
        yield 1
        raise OSError("disk gone")

    stream = prefetch(broken(), depth=2)
    assert next(stream) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(stream)


def test_write_behind_runs_jobs_in_order_in_one_thread_and_bounds_the_queue():
    done, names = [], set()
    gate = threading.Event()

    def job(i):
        gate.wait()
        names.add(threading.current_thread().name)
        done.append(i)

    writer = WriteBehind(depth=2)
    writer.submit(job, 0)  # taken by the thread, blocked on the gate
    time.sleep(0.05)
    writer.submit(job, 1)
    writer.submit(job, 2)  # the queue (depth 2) is full now
    blocked = threading.Thread(target=writer.submit, args=(job, 3))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # submit waits instead of piling up work
    gate.set()
    blocked.join(5)
    writer.close()
    assert done == [0, 1, 2, 3] and names == {"liteseg-write"}


def test_write_behind_reraises_a_failed_job():
    def fail():
        raise ValueError("cannot encode")

    writer = WriteBehind(depth=1)
    writer.submit(fail)
    with pytest.raises(ValueError, match="cannot encode"):
        writer.close()
    with pytest.raises(ValueError, match="cannot encode"):
        with WriteBehind(depth=1) as w:
            w.submit(fail)


def test_depth_zero_runs_inline():
    main = threading.current_thread().name
    seen = []
    assert list(prefetch(iter([threading.current_thread().name]), depth=0)) == [main]
    with WriteBehind(depth=0) as writer:
        writer.submit(lambda: seen.append(threading.current_thread().name))
        assert seen == [main]
