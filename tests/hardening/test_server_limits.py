"""The server against small hostile requests: thin and huge images, slow clients, odd methods, foreign Host
headers, aborted uploads, and batches that would not fit in memory."""
from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
from PIL import Image

from ..conftest import require_module

require_module("fastapi")
httpx = require_module("httpx")
import uvicorn  # noqa: E402

from liteseg.inference.budget import PixelBudget  # noqa: E402
from liteseg.inference.segmenter import Segmenter  # noqa: E402
from liteseg.serve.app import ServeConfig, create_app  # noqa: E402
from liteseg.serve.slow_clients import HeaderTimeoutProtocol  # noqa: E402

from ..serve.conftest import ThreadedServer, png_bytes, random_image  # noqa: E402



def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (headers and body may come in separate reads)."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)

def _thin_png(width: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, 1)).save(buffer, format="PNG")  # one row: a few KB for millions of pixels
    return buffer.getvalue()


def _post(url: str, data: bytes, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/segment", content=data, headers={"Content-Type": "image/png"}, timeout=60, **kwargs)


def test_thin_image_is_refused_before_decoding(start_server):
    url = start_server()
    answer = _post(url, _thin_png(16_777_216))
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "bad_aspect_ratio", answer.text
    assert _post(url, png_bytes(random_image(40, 56))).status_code == 200


def test_batches_are_split_to_fit_the_pixel_budget(segmenter):
    sizes = []

    class Counting(type(segmenter.backend)):
        def __call__(self, x):
            sizes.append(int(np.prod(x.shape[0:1] + x.shape[2:])))
            return super().__call__(x)

    backend = segmenter.backend
    backend.__class__ = Counting
    try:
        seg = Segmenter(backend, batch_size=8, budget=PixelBudget(max_batch_pixels=3 * 16 * 16))
        results = seg.predict_rgb([random_image(16, 16, seed=i) for i in range(8)])
    finally:
        backend.__class__ = Counting.__bases__[0]
    assert len(results) == 8 and sizes == [3 * 256, 3 * 256, 2 * 256]


def test_metrics_labels_come_from_a_closed_set(start_server):
    url = start_server()
    for i in range(20):
        httpx.request(f"INVENTED{i}", f"{url}/healthz")
    metrics = httpx.get(f"{url}/metrics").text
    assert "INVENTED" not in metrics and 'method="other"' in metrics


def test_api_docs_page_is_off(start_server):
    url = start_server()
    assert httpx.get(f"{url}/docs").status_code == 404  # it loaded Swagger UI from a CDN
    assert httpx.get(f"{url}/openapi.json").status_code == 200


def test_host_header_is_checked_on_a_loopback_server(segmenter):
    app = create_app(ServeConfig(allowed_hosts=["localhost", "127.0.0.1", "[::1]"]), segmenter)
    with ThreadedServer(app) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        rebound = httpx.get(f"{server.url}/healthz", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 421 and rebound.json()["error"]["code"] == "host_not_allowed"


def _open_upload(port: int, length: int = 1_000_000) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                 f"Content-Length: {length}\r\n\r\nx".encode())
    return sock


def test_slow_uploads_do_not_lock_out_other_clients(segmenter):
    config = ServeConfig(max_queue=4, upload_grace_s=1.5, min_upload_kbs=64)
    with ThreadedServer(create_app(config, segmenter)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = [_open_upload(port) for _ in range(16)]  # more than max_queue, one byte each
        try:
            time.sleep(0.3)
            assert httpx.get(f"{server.url}/readyz").status_code == 200
            start = time.monotonic()
            assert _post(server.url, png_bytes(random_image(40, 56))).status_code == 200
            assert time.monotonic() - start < 5
            slow[0].settimeout(10)
            answer = _read_until_closed(slow[0]).decode()  # cut after the grace period, for being under the minimum rate
            assert answer.startswith("HTTP/1.1 408") and "upload_too_slow" in answer, answer
        finally:
            for sock in slow:
                sock.close()
        aborted = _open_upload(port)
        aborted.close()  # a client that goes away mid-upload is not a server error
        time.sleep(0.5)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'status="500"' not in metrics and "client_disconnected" not in metrics


def test_unfinished_headers_are_timed_out(segmenter, monkeypatch):
    monkeypatch.setattr(HeaderTimeoutProtocol, "header_timeout", 0.5)
    config = uvicorn.Config(create_app(ServeConfig(), segmenter), host="127.0.0.1", port=0, log_level="warning",
                            http=HeaderTimeoutProtocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.settimeout(10)
        start = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - start < 5
        assert sock.recv(4096) == b""  # closed
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # normal requests unaffected
    finally:
        server.should_exit = True
        thread.join(30)

