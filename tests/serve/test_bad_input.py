"""Bad input and limits: each answered by a clear JSON error and the right status; the server keeps serving."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from liteseg.inference.backends import Backend
from liteseg.inference.segmenter import Segmenter
from liteseg.serve.app import ServeConfig, create_app

from .conftest import ThreadedServer, png_bytes, random_image

GOOD = png_bytes(random_image(24, 32))


def _post(url: str, **kwargs) -> httpx.Response:
    kwargs.setdefault("timeout", 30)
    return httpx.post(f"{url}/v1/segment", **kwargs)


def _assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status and len(error["message"]) > 20
    return error


def _assert_serving(url: str) -> None:
    response = _post(url, content=GOOD, headers={"Content-Type": "image/png"})
    assert response.status_code == 200 and response.json()["width"] == 32


truncated_png = GOOD[: len(GOOD) // 2]
truncated_jpeg = png_bytes(random_image(64, 64), "JPEG")[:400]


@pytest.mark.parametrize("data, code", [
    (b"\x00\x01 definitely not an image", "invalid_image"),
    (b"%PDF-1.7\n" + b"x" * 100, "invalid_image"),
    (truncated_png, "invalid_image"),
    (truncated_jpeg, "invalid_image"),
    (b"", "empty_body"),
], ids=["garbage", "pdf", "truncated-png", "truncated-jpeg", "empty"])
def test_unreadable_bodies_are_400(server_url, data, code):
    for kwargs in ({"content": data, "headers": {"Content-Type": "image/png"}},
                   {"files": {"image": ("x.png", data, "image/png")}}):
        error = _assert_error(_post(server_url, **kwargs), 400, code)
        assert "image" in error["message"]
    _assert_serving(server_url)


def test_wrong_content_types_are_415(server_url):
    _assert_error(_post(server_url, content=GOOD, headers={"Content-Type": "text/plain"}), 415,
                  "unsupported_media_type")
    _assert_error(_post(server_url, json={"image": "x"}), 415, "unsupported_media_type")
    _assert_error(_post(server_url, files={"image": ("notes.txt", b"hello", "text/plain")}), 415,
                  "unsupported_media_type")
    _assert_serving(server_url)


def test_multipart_without_a_file_is_400(server_url):
    error = _assert_error(_post(server_url, files={"image": (None, "just text")}), 400, "missing_file")
    assert "field 'image'" in error["message"]
    malformed = _post(server_url, content=b"--x\r\nnot a multipart body",
                      headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] in ("invalid_multipart", "missing_file")
    _assert_serving(server_url)


def test_bad_parameters_and_unknown_routes(server_url):
    error = _assert_error(_post(server_url, params={"format": "gif"}, content=GOOD,
                                headers={"Content-Type": "image/png"}), 422, "invalid_parameter")
    assert "format" in error["message"]
    _assert_error(_post(server_url, params={"alpha": 2}, content=GOOD, headers={"Content-Type": "image/png"}),
                  422, "invalid_parameter")
    _assert_error(httpx.get(f"{server_url}/v1/nothing"), 404, "not_found")
    _assert_error(httpx.get(f"{server_url}/v1/segment"), 405, "method_not_allowed")
    _assert_serving(server_url)


def test_size_limits_are_413(start_server):
    url = start_server(max_pixels=40 * 40, max_upload_mb=0.05)
    error = _assert_error(_post(url, content=png_bytes(random_image(41, 40)), headers={"Content-Type": "image/png"}),
                          413, "image_too_large")
    assert "1640" in error["message"] and "--max-pixels" in error["message"]
    big = png_bytes(random_image(160, 160))  # ~77 kB of noise > 0.05 MiB
    _assert_error(_post(url, content=big, headers={"Content-Type": "image/png"}), 413, "upload_too_large")
    _assert_error(_post(url, files={"image": ("big.png", big, "image/png")}), 413, "upload_too_large")

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield big[:10_000]

    _assert_error(_post(url, content=chunks(), headers={"Content-Type": "image/png"}), 413, "upload_too_large")
    response = _post(url, content=png_bytes(random_image(40, 40)), headers={"Content-Type": "image/png"})
    assert response.status_code == 200


def test_full_queue_is_503_with_retry_after(start_server):
    url = start_server(max_batch=8, max_wait_ms=3000, max_queue=2)
    answers: list[httpx.Response] = []
    clients = [threading.Thread(target=lambda: answers.append(_post(url, content=GOOD,
                                                                    headers={"Content-Type": "image/png"})))
               for _ in range(2)]
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 10
    while (ready := httpx.get(f"{url}/readyz")).status_code == 200 and ready.json()["queue"] < 2:
        assert time.monotonic() < deadline, "the two requests never reached the queue"  # (waiting for the batch)
        time.sleep(0.02)
    _assert_error(ready, 503, "busy")  # readiness says a new request would be refused
    refused = _post(url, content=GOOD, headers={"Content-Type": "image/png"})
    error = _assert_error(refused, 503, "queue_full")
    assert int(refused.headers["Retry-After"]) >= 1 and "--max-queue" in error["message"]
    for thread in clients:
        thread.join(30)
    assert [a.status_code for a in answers] == [200, 200]
    _assert_serving(url)
    assert 'liteseg_errors_total{code="queue_full"} 1.0' in httpx.get(f"{url}/metrics").text


def test_uploads_still_arriving_have_their_own_slots(start_server):
    url = start_server(max_queue=1, max_uploads=1)
    sent_first_part, release = threading.Event(), threading.Event()

    def slow_body():
        yield GOOD[:100]
        sent_first_part.set()
        release.wait(20)
        yield GOOD[100:]

    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(_post(url, content=slow_body(),
                                                                headers={"Content-Type": "image/png"})))
    slow.start()
    try:
        assert sent_first_part.wait(10)
        deadline = time.monotonic() + 10
        while (refused := _post(url, content=GOOD, headers={"Content-Type": "image/png"})).status_code != 503:
            assert time.monotonic() < deadline, "a second upload was admitted while the first was still arriving"
            time.sleep(0.05)
        _assert_error(refused, 503, "uploads_full")
        _assert_error(httpx.get(f"{url}/readyz"), 503, "busy")  # readiness says a request would be refused
    finally:
        release.set()
        slow.join(30)
    assert answers[0].status_code == 200
    _assert_serving(url)


class _FailsOnWidth13(Backend):
    """The real model, except that it raises on 13-pixel-wide inputs."""

    name = "flaky"

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.meta)
        self.inner = inner

    def __call__(self, x):
        if x.shape[-1] == 13:
            raise RuntimeError("simulated out-of-memory")
        return self.inner(x)


def test_inference_failure_is_500_and_the_server_keeps_serving(segmenter):
    flaky = Segmenter(_FailsOnWidth13(segmenter.backend))
    with ThreadedServer(create_app(ServeConfig(), flaky)) as server:
        error = _assert_error(_post(server.url, content=png_bytes(random_image(9, 13)),
                                    headers={"Content-Type": "image/png"}), 500, "inference_failed")
        assert "simulated" not in error["message"] and "RuntimeError" not in error["message"]  # in the log only
        _assert_serving(server.url)
