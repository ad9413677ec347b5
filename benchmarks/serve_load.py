"""Load benchmark for ``liteseg serve`` on loopback: requests/s and p50/p99 latency per client concurrency.

Starts ``liteseg serve`` once per batching setting on 127.0.0.1, sends a bounded number of requests (and stops
after a time limit) from 1, 4 and 16 concurrent keep-alive clients, and prints a Markdown table.

    PYTHONPATH=src python benchmarks/serve_load.py --size 360x480 --requests 48
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from load_clients import run_clients

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from liteseg.utils.net import free_ports  # noqa: E402


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_server(args: argparse.Namespace, port: int, max_batch: int, max_wait_ms: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "liteseg", "serve", "--port", str(port), "--max-batch", str(max_batch),
               "--max-wait-ms", str(max_wait_ms), "--max-queue", "256", "--backend", args.backend]
    for flag, value in (("--model", args.model), ("--device", args.device), ("--threads", args.threads)):
        if value:
            command += [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"liteseg serve exited with {proc.returncode}: {' '.join(command)}")
        try:
            if _get(port, "/readyz")[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("liteseg serve did not become ready within 180 s")


def run_level(port: int, body: bytes, clients: int, requests: int, time_limit: float) -> dict[str, float]:
    """``requests`` POSTs from ``clients`` keep-alive connections, stopping early after ``time_limit`` seconds."""

    def send(conn: http.client.HTTPConnection) -> bool:
        conn.request("POST", "/v1/segment?format=json", body=body, headers={"Content-Type": "image/jpeg"})
        response = conn.getresponse()
        response.read()
        return response.status == 200

    return run_clients(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=120), send,
                       http.client.HTTPConnection.close, clients, requests, time_limit)


def batch_totals(port: int) -> tuple[float, float]:
    """(forward passes, images) so far, from the server's metrics."""
    text = _get(port, "/metrics")[1].decode()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return float(values.get("liteseg_batch_size_count", 0)), float(values.get("liteseg_batch_size_sum", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: liteseg serve's default model)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--device", help="torch device, e.g. cuda:0")
    parser.add_argument("--threads", type=int, help="server CPU threads")
    parser.add_argument("--size", default="360x480", help="image HxW (default 360x480, CamVid)")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=48, help="requests per level (default 48)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per level at most (default 60)")
    parser.add_argument("--batching", default="1:0,8:10",
                        help="max_batch:max_wait_ms settings to compare (default '1:0,8:10': off, then on)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    h, w = (int(v) for v in args.size.lower().split("x"))
    small = np.random.RandomState(0).randint(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
    body = buffer.getvalue()
    rows = []
    for setting in args.batching.split(","):
        max_batch, max_wait = int(setting.split(":")[0]), float(setting.split(":")[1])
        port = free_ports()[0]
        proc = start_server(args, port, max_batch, max_wait)
        try:
            run_level(port, body, 1, 3, 30)  # warm-up
            for clients in (int(c) for c in args.clients.split(",")):
                passes, images = batch_totals(port)
                row = run_level(port, body, clients, args.requests, args.time_limit)
                passes_after, images_after = batch_totals(port)
                row.update(max_batch=max_batch, max_wait_ms=max_wait,
                           mean_batch=(images_after - images) / max(passes_after - passes, 1))
                rows.append(row)
                print(f"max_batch={max_batch} clients={clients}: {row['rps']:.2f} req/s, p50 {row['p50_ms']:.0f} ms,"
                      f" p99 {row['p99_ms']:.0f} ms ({row['requests']} requests, {row['errors']} errors)",
                      file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    print(f"\n{h}x{w} JPEG, backend {args.backend}{' on ' + args.device if args.device else ''}\n")
    print("| batching | clients | req/s | p50 ms | p99 ms | mean batch | requests | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = "off" if r["max_batch"] == 1 else f"max {r['max_batch']}, {r['max_wait_ms']:g} ms"
        print(f"| {label} | {r['clients']} | {r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['mean_batch']:.2f} | {r['requests']} | {r['errors']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
