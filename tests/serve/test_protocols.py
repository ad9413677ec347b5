"""KServe v2 (with ``tritonclient.http`` as the client) and PaddleX's ``/semantic-segmentation`` on liteseg's
own server: the same labels as ``/v1/segment`` and the model's own argmax, and the same clean 4xx errors."""
from __future__ import annotations

import base64
import io
import json
import os
import threading
import time

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from liteseg.inference.backends import Backend
from liteseg.inference.segmenter import Segmenter

from ..conftest import require_module
from .conftest import NUM_CLASSES, ThreadedServer, png_bytes, random_image

require_module("tritonclient.http")
require_module("requests")
import requests  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from liteseg.serve.app import ServeConfig, build_segmenter, create_app  # noqa: E402

IMAGE = random_image(36, 52, seed=7)


def _logits(segmenter, image: np.ndarray) -> torch.Tensor:
    """The model's own logits ``[C, H, W]`` (an independent reference for every surface)."""
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - torch.tensor(segmenter.meta.mean)[:, None,
         None]) / torch.tensor(segmenter.meta.std)[:, None, None]
    with torch.no_grad():
        logits = segmenter.backend.model(x.float())
    return (logits[0] if isinstance(logits, (list, tuple)) else logits)[0]


def _argmax(segmenter, image: np.ndarray) -> np.ndarray:
    return _logits(segmenter, image).argmax(0).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def client(server_url):
    with httpclient.InferenceServerClient(server_url.removeprefix("http://")) as c:
        yield c


def _infer(client, name: str, array: np.ndarray, datatype: str, binary: bool = True, outputs=("LABELS",)):
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return client.infer("liteseg", [tensor], outputs=[httpclient.InferRequestedOutput(o, binary_data=binary)
                                                     for o in outputs])


def test_v2_health_metadata_and_readiness(client):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("liteseg")
    meta = client.get_model_metadata("liteseg")
    assert [i["name"] for i in meta["inputs"]] == ["IMAGE", "PIXELS"]
    assert meta["outputs"][0] == {"name": "LABELS", "datatype": "UINT8", "shape": [-1, -1]}
    assert meta["outputs"][1]["shape"] == [NUM_CLASSES, -1, -1]
    assert not client.is_model_ready("other")


def test_v2_infer_binary_and_json_match_the_rest_api(client, server_url, segmenter):
    rest = np.asarray(Image.open(io.BytesIO(httpx.post(f"{server_url}/v1/segment", params={"format": "labels"},
                                                       content=png_bytes(IMAGE), timeout=30,
                                                       headers={"Content-Type": "image/png"}).content)))
    np.testing.assert_array_equal(rest, _argmax(segmenter, IMAGE))
    encoded = np.array([png_bytes(IMAGE)], dtype=object)
    for binary in (True, False):
        pixels = _infer(client, "PIXELS", IMAGE, "UINT8", binary).as_numpy("LABELS")
        assert pixels.dtype == np.uint8 and pixels.shape == IMAGE.shape[:2]
        np.testing.assert_array_equal(pixels, rest)
    np.testing.assert_array_equal(_infer(client, "IMAGE", encoded, "BYTES").as_numpy("LABELS"), rest)
    # JSON BYTES: the base64 of the file
    body = {"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(png_bytes(IMAGE)).decode()]}]}
    answer = httpx.post(f"{server_url}/v2/models/liteseg/infer", json=body, timeout=30).json()
    assert answer["outputs"][0]["shape"] == [36, 52]
    np.testing.assert_array_equal(np.array(answer["outputs"][0]["data"]).reshape(36, 52), rest)


def test_v2_probabilities_on_request(client, segmenter):
    result = _infer(client, "PIXELS", IMAGE, "UINT8", outputs=("LABELS", "PROBS"))
    probs = result.as_numpy("PROBS")
    assert probs.shape == (NUM_CLASSES, 36, 52) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, _logits(segmenter, IMAGE).softmax(0).numpy(), atol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("LABELS"), _argmax(segmenter, IMAGE))
    assert _infer(client, "PIXELS", IMAGE, "UINT8").as_numpy("PROBS") is None


def _paddlex(server_url: str, body) -> requests.Response:
    return requests.post(f"{server_url}/semantic-segmentation", json=body, timeout=30)


def test_paddlex_endpoint_schema_and_labels(server_url, segmenter):
    answer = _paddlex(server_url, {"image": base64.b64encode(png_bytes(IMAGE)).decode()})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"logId", "errorCode", "errorMsg", "result"}
    assert body["errorCode"] == 0 and body["errorMsg"] == "Success" and len(body["logId"]) >= 32
    result = body["result"]
    assert result["size"] == [36, 52]
    np.testing.assert_array_equal(np.array(result["labelMap"]).reshape(36, 52), _argmax(segmenter, IMAGE))
    overlay = Image.open(io.BytesIO(base64.b64decode(result["image"])))
    assert overlay.format == "JPEG" and overlay.size == (52, 36)
    quiet = _paddlex(server_url, {"image": base64.b64encode(png_bytes(IMAGE)).decode(), "visualize": False}).json()
    assert "image" not in quiet["result"] and quiet["result"]["labelMap"] == result["labelMap"]


CORRUPT = png_bytes(random_image(24, 24))[:60]


@pytest.mark.parametrize("body, status, text", [
    ({"image": "https://example.com/street.jpg"}, 422, "URL"),
    ({"image": base64.b64encode(CORRUPT).decode()}, 400, "truncated or corrupt"),
    ({"image": "***not base64***"}, 422, "base64"),
    ({"picture": "x"}, 422, '"image"'),
    ({"image": base64.b64encode(png_bytes(IMAGE)).decode(), "targetSize": [100, 100]}, 422, "targetSize"),
], ids=["url", "corrupt", "base64", "field", "target-size"])
def test_paddlex_errors_are_4xx_with_a_message(server_url, body, status, text):
    answer = _paddlex(server_url, body)
    assert answer.status_code == status
    error = answer.json()
    assert error["errorCode"] == status and text in error["errorMsg"] and "logId" in error
    assert _paddlex(server_url, {"image": base64.b64encode(png_bytes(IMAGE)).decode()}).status_code == 200


def _v2_error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_v2_bad_input_is_4xx_and_the_server_stays_healthy(client, start_server):
    cases = [
        ("400", lambda: _infer(client, "IMAGE", np.array([CORRUPT], dtype=object), "BYTES")),  # corrupt image
        ("400", lambda: _infer(client, "PIXELS", IMAGE.astype(np.float32), "FP32")),  # wrong dtype
        ("400", lambda: _infer(client, "PIXELS", IMAGE[:, :, :2].copy(), "UINT8")),  # wrong shape
        ("400", lambda: _infer(client, "SOMETHING", IMAGE, "UINT8")),  # unknown input
        ("404", lambda: client.infer("nope", [httpclient.InferInput("PIXELS", [1, 1, 3], "UINT8")])),
    ]
    for status, call in cases:
        error = _v2_error(call)
        assert error.status() == status and len(error.message()) > 20, (status, error)
    small = httpclient.InferenceServerClient(start_server(max_pixels=100).removeprefix("http://"))
    error = _v2_error(lambda: _infer(small, "PIXELS", IMAGE, "UINT8"))
    assert error.status() == "413" and "max-pixels" in error.message()
    assert client.is_server_ready()
    assert _infer(client, "PIXELS", IMAGE, "UINT8").as_numpy("LABELS").shape == (36, 52)


class _RecordingBackend(Backend):
    """The real model, noting the name of each thread that calls it."""

    name = "recording"

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.meta)
        self.inner, self.threads = inner, set()

    def __call__(self, x):
        self.threads.add(threading.current_thread().name)
        return self.inner(x)


def test_every_route_runs_the_model_on_the_batcher_thread(segmenter):
    """One thread per process calls torch (liteseg.serve.openmp): REST, v2 LABELS and PROBS, PaddleX."""
    backend = _RecordingBackend(segmenter.backend)
    with ThreadedServer(create_app(ServeConfig(), Segmenter(backend))) as server:
        with httpclient.InferenceServerClient(server.url.removeprefix("http://")) as v2:
            probs = _infer(v2, "PIXELS", IMAGE, "UINT8", outputs=("LABELS", "PROBS")).as_numpy("LABELS")
            labels = _infer(v2, "IMAGE", np.array([png_bytes(IMAGE)], dtype=object), "BYTES").as_numpy("LABELS")
        paddlex = _paddlex(server.url, {"image": base64.b64encode(png_bytes(IMAGE)).decode(), "visualize": False})
        rest = httpx.post(f"{server.url}/v1/segment", content=png_bytes(IMAGE), timeout=30,
                          headers={"Content-Type": "image/png"})
    assert rest.status_code == 200 and paddlex.status_code == 200
    for answer in (probs, labels, np.array(paddlex.json()["result"]["labelMap"]).reshape(IMAGE.shape[:2])):
        np.testing.assert_array_equal(answer, _argmax(segmenter, IMAGE))
    assert backend.threads == {"liteseg-batcher"}


def _thread_count(at_most: int | None = None) -> int:
    """This process's OS threads, once no more are ending (or down to ``at_most``), within 5 s."""
    deadline, count = time.monotonic() + 5, len(os.listdir("/proc/self/task"))
    while time.monotonic() < deadline and (at_most is None or count > at_most):
        time.sleep(0.3)
        count, last = len(os.listdir("/proc/self/task")), count
        if at_most is None and count == last:
            break
    return count


def test_the_model_loads_in_a_thread_that_ends(serve_model_file):
    """build_segmenter leaves the calling thread without an OpenMP team (whose worker threads would outlive the
    load and make the batcher's team sleep between operators instead of spin-waiting)."""
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts threads in /proc (Linux)")
    config = ServeConfig(model=str(serve_model_file), threads=2)
    first = threading.Thread(target=build_segmenter, args=(config,))  # threads torch starts once per process
    first.start()
    first.join(60)
    counts: list[int] = []
    loaded: list[Segmenter] = []

    def load() -> None:  # a fresh thread stands for `liteseg serve`'s main thread
        before = _thread_count()
        loaded.append(build_segmenter(config))
        counts.extend([before, _thread_count(at_most=before)])

    thread = threading.Thread(target=load)
    thread.start()
    thread.join(60)
    assert counts and counts[1] == counts[0], f"{counts[1] - counts[0]} thread(s) left behind by the load"
    np.testing.assert_array_equal(loaded[0].predict_rgb([IMAGE])[0].labels, _argmax(loaded[0], IMAGE))


def test_v2_and_paddlex_uploads_take_the_same_slots_as_v1(start_server, segmenter):
    url = start_server(max_queue=1, max_uploads=1)
    sent_first_part, release = threading.Event(), threading.Event()
    body = json.dumps({"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1],
                                   "data": [base64.b64encode(png_bytes(IMAGE)).decode()]}]}).encode()

    def slow_body():
        yield body[:100]
        sent_first_part.set()
        release.wait(20)
        yield body[100:]

    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/v2/models/liteseg/infer",
                                                                     content=slow_body(), timeout=30)))
    slow.start()
    try:
        assert sent_first_part.wait(10)
        deadline = time.monotonic() + 10
        while (rest := httpx.post(f"{url}/v1/segment", content=png_bytes(IMAGE), timeout=30,
                                  headers={"Content-Type": "image/png"})).status_code != 503:
            assert time.monotonic() < deadline, "/v1/segment was admitted while a v2 upload was still arriving"
            time.sleep(0.05)
        assert rest.json()["error"]["code"] == "uploads_full"
        paddlex = _paddlex(url, {"image": base64.b64encode(png_bytes(IMAGE)).decode()})
        assert paddlex.status_code == 503 and "--max-uploads" in paddlex.json()["errorMsg"]
        v2 = httpx.post(f"{url}/v2/models/liteseg/infer", content=body, timeout=30)
        assert v2.status_code == 503 and v2.json()["code"] == "uploads_full"
    finally:
        release.set()
        slow.join(30)
    assert answers[0].status_code == 200
    np.testing.assert_array_equal(np.array(answers[0].json()["outputs"][0]["data"]).reshape(IMAGE.shape[:2]),
                                  _argmax(segmenter, IMAGE))
