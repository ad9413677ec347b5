"""The client loop the load benchmarks share (``serve_load.py``, ``protocol_load.py``): a bounded number of requests
from concurrent threads, each with its own connection, stopping after a time limit."""
from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import numpy as np

Connection = TypeVar("Connection")


def run_clients(connect: Callable[[], Connection], send: Callable[[Connection], bool],
                close: Callable[[Connection], None], clients: int, requests: int, time_limit: float) -> dict:
    """``requests`` calls of ``send(connection)`` (True: answered well) from ``clients`` threads, each with its
    own ``connect()``, stopping after ``time_limit`` seconds: requests, errors, req/s, p50 and p99 ms."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [requests]
    stop_at = time.monotonic() + time_limit

    def client() -> None:
        nonlocal errors
        connection = connect()
        try:
            while time.monotonic() < stop_at:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                ok = send(connection)
                with lock:
                    latencies.append(time.perf_counter() - start)
                    errors += not ok
        finally:
            close(connection)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {"clients": clients, "requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
