"""Inference-protocol load benchmark: ``liteseg serve``, ``liteseg serve --engine triton`` and the exported Triton
repository under the same concurrent load on loopback, against model-only throughput.

Every server gets the same 360x480 JPEG as a KServe v2 binary tensor (``IMAGE``, asking for ``LABELS`` only) from
``--clients`` concurrent ``tritonclient.http`` clients; model-only is the same backend and threads called
in-process, batch 1, on the decoded image, measured right before and right after each server's run (the mean of
the two is that server's baseline: on a shared machine the load drifts between runs). Also counts the pixels where
a server's labels differ from model-only. The Triton rows need nvidia-pytriton (numpy < 2), so run it in the Triton
environment; without nvidia-pytriton it measures ``liteseg serve`` alone:

    PYTHONPATH=src .venv-triton/bin/python benchmarks/protocol_load.py --requests 64 --clients 8
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tritonclient.http as httpclient
from PIL import Image

from load_clients import run_clients

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import liteseg  # noqa: E402
from liteseg.loading.zoo import default_model  # noqa: E402
from liteseg.serve.triton import TritonOptions, start_triton  # noqa: E402
from liteseg.serve.triton_repo import write_repository  # noqa: E402
from liteseg.utils.net import free_ports  # noqa: E402


def _wait_ready(port: int, proc: subprocess.Popen | None = None, timeout: float = 300) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if client.is_model_ready("liteseg"):
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"no server ready on port {port} within {timeout:g} s")


def _request(client: httpclient.InferenceServerClient, jpeg: bytes, batch_dim: bool) -> np.ndarray:
    data = np.array([[jpeg]] if batch_dim else [jpeg], dtype=object)
    tensor = httpclient.InferInput("IMAGE", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data, binary_data=True)
    labels = client.infer("liteseg", [tensor], outputs=[httpclient.InferRequestedOutput("LABELS", binary_data=True)]
                          ).as_numpy("LABELS")
    return labels[0] if batch_dim else labels


def load(port: int, jpeg: bytes, clients: int, requests: int, time_limit: float, batch_dim: bool) -> dict:
    """``requests`` v2 infer calls from ``clients`` threads (stopping after ``time_limit`` s); req/s, p50, p99."""

    def connect() -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=300, connection_timeout=300)

    def send(client: httpclient.InferenceServerClient) -> bool:
        return _request(client, jpeg, batch_dim).size > 0  # an error raises

    return run_clients(connect, send, httpclient.InferenceServerClient.close, clients, requests, time_limit)


def model_only(seg: liteseg.Segmenter, rgb: np.ndarray, seconds: float) -> float:
    """Images per second of the backend called in-process, batch 1."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        seg.predict_rgb([rgb])
        count += 1
    return count / (time.perf_counter() - start)


def exported_repository(model: str, args: argparse.Namespace, measured: Callable[[str, int, bool], None]) -> None:
    """Measure the repository ``liteseg export --format triton`` writes, under the bundled tritonserver."""
    folder = Path(tempfile.mkdtemp(prefix="liteseg-bench-"))
    try:
        write_repository(model, folder / "repo", onnx=False, max_batch=max(args.max_batch, 1), threads=args.threads)
        http, grpc, metrics = free_ports(3)
        server = start_triton(None, TritonOptions(http_port=http, grpc_port=grpc, metrics_port=metrics),
                              folder / "repo", write=False)
        try:
            measured("exported repository (bundled tritonserver)", http, True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: the shipped default model)")
    parser.add_argument("--threads", type=int, default=2, help="backend CPU threads everywhere (default 2)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=64, help="requests per server (default 64)")
    parser.add_argument("--time-limit", type=float, default=90.0, help="seconds per server at most")
    parser.add_argument("--max-batch", type=int, default=1, help="server batching (default 1: off, as on CPU)")
    args = parser.parse_args()
    model = args.model or default_model()

    small = np.random.RandomState(0).randint(0, 256, (45, 60, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((480, 360), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
    jpeg = buffer.getvalue()
    rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    seg = liteseg.Segmenter(model, threads=args.threads, keep_image=False)
    expected = seg.predict_rgb([rgb])[0].labels
    rows, identical, baseline = [], {}, {}  # identical: pixels whose label differs from model-only

    def measured(name: str, port: int, batch_dim: bool) -> None:
        identical[name] = int((_request(httpclient.InferenceServerClient(f"127.0.0.1:{port}"), jpeg,
                                        batch_dim) != expected).sum())
        load(port, jpeg, args.clients, args.clients, 60, batch_dim)  # warm-up
        before = model_only(seg, rgb, 10.0)
        rows.append((name, load(port, jpeg, args.clients, args.requests, args.time_limit, batch_dim)))
        baseline[name] = (before + model_only(seg, rgb, 10.0)) / 2
        print(name, rows[-1][1], f"model-only {baseline[name]:.2f} img/s", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    common = ["--model", model, "--threads", str(args.threads), "--max-batch", str(args.max_batch)]
    triton = importlib.util.find_spec("pytriton") is not None
    if not triton:
        print("nvidia-pytriton is not installed: liteseg serve only (the Triton rows need .venv-triton)",
              file=sys.stderr)
    servers = [("liteseg serve (FastAPI, v2)", ["--max-queue", "256"], False)]
    if triton:
        servers.append(("liteseg serve --engine triton", ["--engine", "triton"], True))
    for name, extra, batch_dim in servers:
        http, grpc, metrics = free_ports(3)
        ports = ["--port", str(http)] + (["--grpc-port", str(grpc), "--metrics-port", str(metrics)]
                                         if "triton" in name else [])
        proc = subprocess.Popen([sys.executable, "-m", "liteseg", "serve", *common, *extra, *ports], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(http, proc)
            measured(name, http, batch_dim)
        finally:
            proc.terminate()
            proc.wait(120)

    if triton:
        exported_repository(model, args, measured)

    print(f"\n360x480 JPEG as a v2 binary IMAGE tensor, {args.clients} concurrent clients, {args.threads} backend "
          f"threads, server max batch {args.max_batch}\n")
    print("| server | req/s | model-only img/s | x model-only | p50 ms | p99 ms | requests | labels != model-only |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['rps']:.2f} | {baseline[name]:.2f} | {r['rps'] / baseline[name]:.2f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['requests']} | {identical[name]} px |")


if __name__ == "__main__":
    main()
