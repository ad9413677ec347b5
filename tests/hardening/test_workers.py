"""Worker processes: their live gauges go when they die, they end with their parent, and a request cut by the
shutdown timeout is answered in JSON."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from ..conftest import require_module

require_module("prometheus_client")
httpx = require_module("httpx")
import uvicorn  # noqa: E402

from liteseg.inference.backends import Backend  # noqa: E402
from liteseg.inference.segmenter import Segmenter  # noqa: E402
from liteseg.serve.app import ServeConfig, create_app  # noqa: E402
from liteseg.serve.telemetry import MULTIPROC_ENV, ServeMetrics  # noqa: E402

from ..serve.conftest import png_bytes, random_image  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def test_a_dead_workers_gauges_are_removed(tmp_path, monkeypatch):
    worker = ("from liteseg.serve.telemetry import ServeMetrics\nm = ServeMetrics()\nm.queue.inc(7)\n"
              "m.request_started()\n")  # then it ends without cleaning up, as after kill -9
    subprocess.run([sys.executable, "-c", worker], env=_env(**{MULTIPROC_ENV: str(tmp_path)}), check=True)
    assert list(tmp_path.glob("gauge_livesum_*.db"))
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    text = ServeMetrics().render().decode()
    assert "liteseg_queue_depth 7.0" not in text and "liteseg_inflight_requests 1.0" not in text, text
    assert not list(tmp_path.glob("gauge_livesum_*.db"))


def test_workers_end_with_their_parent(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    worker = ("import signal, sys, time\nfrom liteseg.serve.telemetry import ServeMetrics, end_with_parent\n"
              "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"  # uvicorn's graceful stop, in short
              "end_with_parent()\nServeMetrics().queue.inc()\nprint('up', flush=True)\ntime.sleep(60)\n")
    parent = ("import subprocess, sys\nchild = subprocess.Popen([sys.executable, '-c', sys.argv[1]])\n"
              "print(child.pid, flush=True)\nchild.wait()\n")
    proc = subprocess.Popen([sys.executable, "-c", parent, worker], stdout=subprocess.PIPE, text=True,
                            env=_env(**{MULTIPROC_ENV: str(metrics), "LITESEG_OWN_METRICS_DIR": "1"}))
    child = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{child}") and "zombie" not in _state(child):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)
    assert not metrics.exists()  # liteseg's metrics folder goes with the last worker


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return f.read().lower()
    except OSError:
        return "zombie"


class _Slow(Backend):
    name = "slow"

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.meta)
        self.inner = inner

    def __call__(self, x):
        time.sleep(1.5)
        return self.inner(x)


def test_shutdown_timeout_answers_json(segmenter):
    app = create_app(ServeConfig(), Segmenter(_Slow(segmenter.backend)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical",
                                           timeout_graceful_shutdown=0.3))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{url}/v1/segment", content=png_bytes(random_image(16, 16)), headers={"Content-Type": "image/png"},
        timeout=30)))
    client.start()
    time.sleep(0.5)
    server.should_exit = True
    client.join(30)
    thread.join(30)
    assert answers and answers[0].status_code == 503, answers[0].text if answers else "no answer"
    assert answers[0].json()["error"]["code"] == "shutting_down"
