"""``liteseg serve`` as a user runs it: a subprocess on loopback, served, then stopped gracefully by SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from liteseg.cli.main import main
from liteseg.utils.net import free_ports

from .conftest import png_bytes, random_image

SRC = Path(__file__).resolve().parents[2] / "src"


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"liteseg serve exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("liteseg serve did not become ready")


@contextmanager
def _serve(model_file: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str, int]]:
    """``liteseg serve --model MODEL --port P OPTIONS`` in a subprocess, ready; killed on exit if still running."""
    port = free_ports()[0]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "liteseg", "serve", "--model", str(model_file), "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_ready(url, proc)
        yield proc, url, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_serve_answers_then_sigterm_lets_in_flight_requests_finish(serve_model_file):
    with _serve(serve_model_file, "--max-batch", "8", "--max-wait-ms", "4000", "--threads", "1") as (proc, url, port):
        assert httpx.get(f"{url}/v1/model").json()["name"] == serve_model_file.name
        answers: list[httpx.Response] = []
        image = png_bytes(random_image(24, 32))
        clients = [threading.Thread(target=lambda: answers.append(httpx.post(
            f"{url}/v1/segment", content=image, headers={"Content-Type": "image/png"}, timeout=60)))
            for _ in range(3)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/readyz").json()["queue"] < 3:  # all three wait in the batcher (4 s)
            assert time.monotonic() < deadline, "the requests never reached the queue"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        for thread in clients:
            thread.join(60)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert all(a.json()["width"] == 32 for a in answers)
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
        log = proc.stdout.read()
        assert f"http://127.0.0.1:{port}/" in log and "Finished server process" in log


def test_serve_with_two_worker_processes(serve_model_file):
    """--workers 2: uvicorn starts two processes, each loading the model from the environment, both serving."""
    with _serve(serve_model_file, "--workers", "2", "--threads", "1") as (proc, url, _):
        image = png_bytes(random_image(24, 32))
        answers = [httpx.post(f"{url}/v1/segment", content=image, headers={"Content-Type": "image/png"}, timeout=60)
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert len({str(a.json()["classes"]) for a in answers}) == 1  # every worker has the same model
        assert httpx.get(f"{url}/v1/model").json()["name"] == serve_model_file.name
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log = proc.stdout.read()
        assert log.count("Started server process") == 2, log


def test_serve_rejects_bad_options_with_one_clear_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: no such model file" in capsys.readouterr().err
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "--max-batch: must be at least 1" in capsys.readouterr().err


def test_serve_without_the_extra_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 2
    assert "needs uvicorn: pip install 'liteseg[serve]'" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["torch-opt", pytest.param("torch-compile", marks=pytest.mark.compile_full)])
def test_serve_with_an_optimised_backend_answers_the_models_labels(backend, serve_model, serve_model_file):
    """The server loads the model itself with --backend (torch-opt: frozen TorchScript; torch-compile: Inductor);
    its label PNG equals the eager model's argmax wherever that is not near a tie."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    from liteseg.serve.app import ServeConfig, create_app

    from .conftest import ThreadedServer

    image = random_image(32, 48, seed=4)
    with ThreadedServer(create_app(ServeConfig(model=str(serve_model_file), backend=backend))) as server:
        answer = httpx.post(f"{server.url}/v1/segment", params={"format": "labels"}, content=png_bytes(image),
                            headers={"Content-Type": "image/png"}, timeout=600)
        assert httpx.get(f"{server.url}/v1/model").json()["backend"] == backend
    assert answer.status_code == 200, answer.text
    labels = np.asarray(Image.open(io.BytesIO(answer.content)))
    x = torch.from_numpy(((image / 255.0 - 0.5) / 0.5).astype(np.float32).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        logits = serve_model(x)[0].numpy()
    top2 = np.sort(logits, axis=0)[-2:]
    sure = top2[1] - top2[0] > 1e-3
    assert sure.mean() > 0.95 and len(np.unique(logits.argmax(0))) > 1
    np.testing.assert_array_equal(labels[sure], logits.argmax(0)[sure])


def test_non_loopback_host_warns_and_options_reach_uvicorn(serve_model_file, monkeypatch, caplog):
    """--host other than loopback warns that the unauthenticated API is reachable from other machines; uvicorn gets
    the host and --shutdown-timeout (its graceful-shutdown limit). Loopback binds do not warn."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    assert main(["serve", "--model", str(serve_model_file), "--host", "0.0.0.0", "--shutdown-timeout", "2.5"]) == 0
    assert calls[-1]["host"] == "0.0.0.0" and calls[-1]["timeout_graceful_shutdown"] == 2.5
    assert "binding 0.0.0.0 makes the API reachable from other machines; it has no authentication" in caplog.text
    caplog.clear()
    assert main(["serve", "--model", str(serve_model_file), "--host", "127.0.0.1"]) == 0
    assert calls[-1]["timeout_graceful_shutdown"] == 30.0 and "reachable from other machines" not in caplog.text


def test_shutdown_timeout_cuts_requests_still_running_after_it(serve_model_file):
    """A request waits 8 s in the batcher; SIGTERM with --shutdown-timeout 0.5 ends the server within a few
    seconds, the request cancelled (without the limit it would be answered: the SIGTERM test above)."""
    with _serve(serve_model_file, "--max-batch", "8", "--max-wait-ms", "8000", "--shutdown-timeout", "0.5",
                "--threads", "1") as (proc, url, _):
        answers: list[object] = []

        def post() -> None:
            try:
                answers.append(httpx.post(f"{url}/v1/segment", content=png_bytes(random_image(24, 32)),
                                          headers={"Content-Type": "image/png"}, timeout=60).status_code)
            except httpx.TransportError as e:
                answers.append(e)

        client = threading.Thread(target=post)
        client.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/readyz").json()["queue"] < 1:
            assert time.monotonic() < deadline, "the request never reached the queue"
            time.sleep(0.02)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took = time.monotonic() - stopped
        client.join(30)
        log = proc.stdout.read()
    assert took < 6, f"the server took {took:.1f} s to stop"
    assert answers and answers[0] != 200 and "timeout graceful shutdown exceeded" in log, (answers, log[-2000:])
