"""DynamicBatcher on its own: batch limits, grouping by size, the bounded queue, failures and draining."""
from __future__ import annotations

import asyncio
import threading
import time
import types

import numpy as np
import pytest

from liteseg.serve.batcher import DynamicBatcher
from liteseg.serve.errors import ApiError
from liteseg.serve.telemetry import ServeMetrics


class Recorder:
    """A stand-in ``predict`` that records batch sizes and returns each image's mean (optionally slowly)."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[list[tuple[int, ...]]] = []
        self.delay, self.fail = delay, fail

    def __call__(self, images):
        self.batches.append([im.shape for im in images])
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model exploded")
        return [float(im.mean()) for im in images]


def fake_batch_clock(monkeypatch, readings) -> None:
    """The batcher's ``time.perf_counter`` reads ``readings`` in turn (a batch's time is its end minus its start);
    ``monotonic`` (the batching wait) stays real."""
    from liteseg.serve import batcher as batcher_module

    clock = iter(readings)
    monkeypatch.setattr(batcher_module, "time", types.SimpleNamespace(perf_counter=lambda: next(clock),
                                                                      monotonic=time.monotonic))


def _image(value: int, h: int = 4, w: int = 4) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_gathers_up_to_max_batch_within_the_wait():
    predict = Recorder()
    batcher = DynamicBatcher(predict, max_batch=3, max_wait_ms=300, max_queue=16)
    try:
        futures = [batcher.submit(_image(i)) for i in range(7)]
        assert [f.result(10) for f in futures] == [float(i) for i in range(7)]
    finally:
        batcher.close()
    assert [len(b) for b in predict.batches] == [3, 3, 1]


def test_batches_split_by_image_size_unless_the_model_resizes():
    for any_size, expected in ((False, [[(4, 4, 3)] * 2, [(6, 4, 3)]]), (True, [[(4, 4, 3), (6, 4, 3), (4, 4, 3)]])):
        predict = Recorder()
        batcher = DynamicBatcher(predict, max_batch=3, max_wait_ms=300, any_size=any_size)
        futures = [batcher.submit(_image(1)), batcher.submit(_image(2, 6)), batcher.submit(_image(3))]
        assert [f.result(10) for f in futures] == [1.0, 2.0, 3.0]
        batcher.close()
        assert sorted(predict.batches) == sorted(expected)


def test_an_image_for_another_model_function_runs_alone_on_the_batcher_thread():
    predict, other = Recorder(), Recorder()
    threads: list[str] = []

    def probs(images):
        threads.append(threading.current_thread().name)
        return [-value for value in other(images)]

    for any_size in (False, True):
        batcher = DynamicBatcher(predict, max_batch=4, max_wait_ms=150, any_size=any_size)
        futures = [batcher.submit(_image(1)), batcher.submit(_image(2), probs), batcher.submit(_image(3))]
        assert [f.result(10) for f in futures] == [1.0, -2.0, 3.0]
        batcher.close()
    assert predict.batches == [[(4, 4, 3)] * 2] * 2 and other.batches == [[(4, 4, 3)]] * 2
    assert threads == ["liteseg-batcher"] * 2


def test_queue_bound_refuses_with_retry_after_then_recovers():
    predict = Recorder(delay=0.2)
    metrics = ServeMetrics()
    batcher = DynamicBatcher(predict, max_batch=1, max_wait_ms=0, max_queue=2, metrics=metrics)
    try:
        accepted = [batcher.submit(_image(i)) for i in range(2)]
        with pytest.raises(ApiError) as info:
            batcher.submit(_image(9))
        assert info.value.status == 503 and info.value.code == "queue_full"
        assert int(info.value.headers["Retry-After"]) >= 1
        assert [f.result(10) for f in accepted] == [0.0, 1.0]
        assert batcher.submit(_image(5)).result(10) == 5.0
    finally:
        batcher.close()
    assert metrics.registry.get_sample_value("liteseg_batch_size_count") == 3
    assert metrics.registry.get_sample_value("liteseg_queue_depth") == 0  # every accepted image answered


def test_a_failing_batch_fails_its_requests_only():
    predict = Recorder(fail=True)
    batcher = DynamicBatcher(predict, max_batch=2, max_wait_ms=100)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            batcher.submit(_image(1)).result(10)
        predict.fail = False
        assert batcher.submit(_image(2)).result(10) == 2.0
        assert batcher.pending == 0
    finally:
        batcher.close()


def test_close_finishes_accepted_images_and_refuses_new_ones():
    predict = Recorder(delay=0.05)
    batcher = DynamicBatcher(predict, max_batch=2, max_wait_ms=1000)
    futures = [batcher.submit(_image(i)) for i in range(5)]
    batcher.close()
    assert [f.result(0) for f in futures] == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ApiError) as info:
        batcher.submit(_image(1))
    assert info.value.code == "shutting_down" and not batcher.running


def test_submits_while_close_runs_are_each_answered_or_refused(monkeypatch):
    """close() starts while one submit() is between its checks and the queue (held there: the widest race
    window) and three more are arriving. Before the fix the stop signal went in first and the held image was
    never answered; now each submit gets its answer or the 503 ``shutting_down``, none hangs."""
    batcher = DynamicBatcher(Recorder(), max_batch=1, max_wait_ms=0)
    putting, stop_queued = threading.Event(), threading.Event()
    put = batcher._queue.put

    def slow_put(item, *args, **kwargs):
        if item is None:
            stop_queued.set()
        else:
            putting.set()
            stop_queued.wait(0.2)  # close() may queue its stop signal now, where the code lets it
        put(item, *args, **kwargs)

    monkeypatch.setattr(batcher._queue, "put", slow_put)
    outcomes: dict[int, object] = {}

    def client(value: int) -> None:
        try:
            outcomes[value] = batcher.submit(_image(value)).result(5)  # a lost image: TimeoutError, no outcome
        except ApiError as e:
            outcomes[value] = e.code

    threads = [threading.Thread(target=client, args=(0,))]
    threads[0].start()
    assert putting.wait(10)
    late = [threading.Thread(target=batcher.close), *(threading.Thread(target=client, args=(v,)) for v in (1, 2, 3))]
    threads += late
    for t in late:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert outcomes.get(0) == 0.0  # it was past the closed check when close() began: answered
    assert all(outcomes.get(v) in (float(v), "shutting_down") for v in (1, 2, 3)), outcomes
    assert batcher.pending == 0


def test_async_segment_does_not_block_the_event_loop():
    predict = Recorder(delay=0.3)
    batcher = DynamicBatcher(predict, max_batch=1, max_wait_ms=0)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        value = await batcher.segment(_image(7))
        task.cancel()
        return value, ticks

    try:
        value, ticks = asyncio.run(main())
    finally:
        batcher.close()
    assert value == 7.0 and ticks >= 10


def test_defaults_option_checks_and_the_worker_thread():
    import threading

    batcher = DynamicBatcher(Recorder())
    try:
        assert (batcher.max_batch, batcher.max_wait, batcher.max_queue, batcher.any_size) == (8, 0.005, 64, False)
        worker = [t for t in threading.enumerate() if t.name == "liteseg-batcher"]
        assert len(worker) == 1 and worker[0].daemon  # never keeps a stopping server alive
    finally:
        batcher.close()
    assert not [t for t in threading.enumerate() if t.name == "liteseg-batcher"]
    message = "^max_batch and max_queue must be >= 1 and max_wait_ms >= 0$"
    for bad in (dict(max_batch=0), dict(max_queue=0), dict(max_wait_ms=-1)):
        with pytest.raises(ValueError, match=message):
            DynamicBatcher(Recorder(), **bad)
    DynamicBatcher(Recorder(), max_batch=1, max_queue=1, max_wait_ms=0).close()  # the smallest valid limits


def test_retry_after_is_queued_batches_times_a_moving_average_of_batch_times(monkeypatch, caplog):
    """Retry-After = ceil(waiting / max_batch * t), t the batch time: 1 s before any batch, then the first batch's
    time, then 0.8 t + 0.2 (the newest); the batcher's clock is faked so the times are exact."""
    fake_batch_clock(monkeypatch, [0.0, 0.5, 10.0, 10.1, 20.0, 20.0])  # the start and end of each batch
    predict = Recorder()
    batcher = DynamicBatcher(predict, max_batch=10, max_wait_ms=0, max_queue=64)
    try:
        error = batcher.queue_full(1000)
        assert error.headers == {"Retry-After": "1"} and error.status == 503 and error.code == "queue_full"
        assert error.message == "1000 images are already queued or running (limit 64, --max-queue); retry after 1 s"
        retry = []
        for _ in range(2):
            batcher.submit(_image(1)).result(10)
            retry.append(int(batcher.queue_full(1000).headers["Retry-After"]))
        assert retry == [50, 42]  # 100 batches x 0.5 s; x (0.8 * 0.5 + 0.2 * 0.1) s
        predict.fail = True
        with pytest.raises(RuntimeError):
            batcher.submit(_image(1)).result(10)
        assert "inference failed for a batch of 1 image(s)" in [r.getMessage() for r in caplog.records]
    finally:
        batcher.close()


def test_after_close_new_images_get_503_shutting_down_and_close_honours_its_timeout():
    batcher = DynamicBatcher(Recorder(delay=1.0), max_wait_ms=0)
    accepted = batcher.submit(_image(1))
    time.sleep(0.2)  # the slow (1 s) batch is running
    started = time.monotonic()
    batcher.close(timeout=0.05)
    assert time.monotonic() - started < 0.6, "close(timeout) must not wait for the running batch"
    with pytest.raises(ApiError) as refused:
        batcher.submit(_image(2))
    e = refused.value
    assert (e.status, e.code, e.message, e.headers) == (
        503, "shutting_down", "the server is shutting down; retry on another instance", {"Retry-After": "1"})
    assert accepted.result(10) == 1.0  # the accepted image is still answered


def test_images_arriving_within_the_wait_share_a_batch_and_zero_wait_runs_at_once():
    predict = Recorder()
    batcher = DynamicBatcher(predict, max_batch=4, max_wait_ms=600)
    first = batcher.submit(_image(1))
    time.sleep(0.1)
    second = batcher.submit(_image(2))
    assert [first.result(10), second.result(10)] == [1.0, 2.0]
    batcher.close()
    assert [len(b) for b in predict.batches] == [2]
    eager = DynamicBatcher(Recorder(), max_batch=4, max_wait_ms=0)
    assert eager.submit(_image(3)).result(5) == 3.0
    eager.close()


def test_a_request_given_up_before_its_batch_runs_is_skipped():
    predict = Recorder(delay=0.5)
    batcher = DynamicBatcher(predict, max_batch=1, max_wait_ms=0)
    running = batcher.submit(_image(1))
    time.sleep(0.1)
    given_up = batcher.submit(_image(2))
    assert given_up.cancel()
    assert running.result(10) == 1.0
    batcher.close()
    assert predict.batches == [[(4, 4, 3)]] and batcher.pending == 0  # no empty batch reached the model


def test_async_segment_runs_the_model_function_it_is_given():
    """``segment(image, fn)`` runs ``fn`` (the server's PROBS route), not the batcher's own model."""
    predict, other = Recorder(), Recorder()
    batcher = DynamicBatcher(predict, max_batch=2, max_wait_ms=0)
    try:
        own, probs = asyncio.run(batcher.segment(_image(5))), asyncio.run(batcher.segment(_image(6), other))
    finally:
        batcher.close()
    assert (own, probs) == (5.0, 6.0) and predict.batches == [[(4, 4, 3)]] and other.batches == [[(4, 4, 3)]]


def test_a_batch_of_only_another_functions_images_times_no_phantom_batch(monkeypatch):
    """With ``any_size``, a batch holding only images for another model function makes no empty shared group: an
    empty group's run would enter a near-zero batch time into the moving average behind Retry-After."""
    import itertools

    fake_batch_clock(monkeypatch, itertools.chain([0.0, 0.5], itertools.repeat(100.0)))  # 0.5 s, then 0 s runs
    predict, other = Recorder(), Recorder()
    batcher = DynamicBatcher(predict, max_batch=10, max_wait_ms=0, any_size=True)
    try:
        assert batcher.submit(_image(3), other).result(10) == 3.0
        assert batcher.queue_full(1000).headers["Retry-After"] == "50"  # 100 batches x 0.5 s, the one real batch
    finally:
        batcher.close()
    assert predict.batches == [] and other.batches == [[(4, 4, 3)]]
