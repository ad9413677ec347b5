"""/metrics through prometheus_client: one set of numbers across worker processes (multiprocess mode)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..conftest import require_module

require_module("prometheus_client")

WORKER = """
from liteseg.serve.telemetry import ServeMetrics
m = ServeMetrics()
for _ in range({n}):
    m.request_started()
    m.request_finished("/v1/segment", "POST", 200, 0.02)
m.error("invalid_image")
m.batch({n}, 0.5)
"""


def _samples(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


def test_workers_report_one_set_of_numbers(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (2, 3):  # two worker processes, each with its own counts
        subprocess.run([sys.executable, "-c", WORKER.format(n=n)], env=env, check=True)
    scrape = "from liteseg.serve.telemetry import ServeMetrics; print(ServeMetrics().render().decode())"
    text = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, capture_output=True, text=True).stdout
    s = _samples(text)
    assert s['liteseg_requests_total{endpoint="/v1/segment",method="POST",status="200"}'] == 5
    assert s['liteseg_errors_total{code="invalid_image"}'] == 2
    assert s['liteseg_request_duration_seconds_count{endpoint="/v1/segment"}'] == 5
    assert s["liteseg_batch_size_count"] == 2 and s["liteseg_batch_size_sum"] == 5


def test_single_process_registries_are_separate():
    from liteseg.serve.telemetry import ServeMetrics

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        pytest.skip("multiprocess mode set by the environment")
    a, b = ServeMetrics(), ServeMetrics()
    a.error("queue_full")
    assert a.registry.get_sample_value("liteseg_errors_total", {"code": "queue_full"}) == 1
    assert b.registry.get_sample_value("liteseg_errors_total", {"code": "queue_full"}) is None
    assert b"# TYPE liteseg_request_duration_seconds histogram" in a.render()
