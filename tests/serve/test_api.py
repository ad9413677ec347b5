"""The API end to end over real HTTP on loopback: every endpoint and output format."""
from __future__ import annotations

import base64
import io

import httpx
import numpy as np
from PIL import Image

from liteseg.serve.app import ServeConfig, create_app
from liteseg.serve.codecs import rle_decode

from .conftest import NUM_CLASSES, ThreadedServer, png_bytes, random_image


def _png(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_segment_formats_match_the_python_api(server_url, segmenter):
    image = random_image(40, 56, seed=1)
    expected = segmenter.predict_rgb([image])[0]
    url = f"{server_url}/v1/segment"
    with httpx.Client(timeout=30) as client:
        labels = _png(client.post(url, params={"format": "labels"}, files={"image": ("a.png", png_bytes(image))}))
        np.testing.assert_array_equal(labels, expected.labels)
        raw = client.post(url, params={"format": "color"}, content=png_bytes(image),
                          headers={"Content-Type": "image/png"})
        np.testing.assert_array_equal(_png(raw), expected.colorize())
        overlay = client.post(url, params={"format": "overlay", "alpha": 0.3}, content=png_bytes(image),
                              headers={"Content-Type": "application/octet-stream"})
        np.testing.assert_array_equal(_png(overlay), expected.overlay(0.3))

        body = client.post(url, params={"rle": "true", "overlay": "true"},
                           files={"image": ("a.jpg", png_bytes(image, "JPEG"), "image/jpeg")}).json()
    assert (body["width"], body["height"]) == (56, 40)
    jpeg_labels = np.zeros((40, 56), dtype=np.int64) - 1
    for entry in body["classes"]:
        jpeg_labels[rle_decode(entry["rle"])] = entry["id"]
        assert entry["pixels"] == rle_decode(entry["rle"]).sum()
        assert entry["color"] == segmenter.meta.palette[entry["id"]]
    assert (jpeg_labels >= 0).all() and jpeg_labels.max() < NUM_CLASSES
    assert abs(sum(e["share"] for e in body["classes"]) - 1.0) < 1e-9
    overlay_png = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["overlay_png"]))))
    assert overlay_png.shape == (40, 56, 3)


def test_json_shares_equal_class_shares(server_url, segmenter):
    image = random_image(33, 47, seed=2)
    body = httpx.post(f"{server_url}/v1/segment", content=png_bytes(image), headers={"Content-Type": "image/png"},
                      timeout=30).json()
    shares = {e["name"]: e["share"] for e in body["classes"]}
    assert shares == segmenter.predict_rgb([image])[0].class_shares()
    assert "rle" not in body["classes"][0] and "overlay_png" not in body


def test_grayscale_and_rgba_uploads_are_converted_with_notes(server_url):
    gray = png_bytes(random_image(20, 30)[:, :, 0])
    rgba = png_bytes(np.dstack([random_image(20, 30), np.full((20, 30), 255, np.uint8)]))
    for data, note in ((gray, "grayscale"), (rgba, "alpha")):
        body = httpx.post(f"{server_url}/v1/segment", files={"image": ("x.png", data)}, timeout=30).json()
        assert body["width"] == 30 and any(note in n for n in body["notes"])


def test_model_info_health_and_readiness(server_url, segmenter):
    info = httpx.get(f"{server_url}/v1/model").json()
    assert info["name"] == "tiny.safetensors" and info["arch"] == "pp_liteseg_t" and info["trained"] is True
    assert info["backend"] == "torch" and info["num_classes"] == NUM_CLASSES
    assert info["about"] == f"PP-LiteSeg-T, classes {', '.join(segmenter.meta.class_names)}, {NUM_CLASSES} " \
                            f"classes, runs at each image's size"
    assert [c["name"] for c in info["classes"]] == segmenter.meta.class_names
    assert [c["color"] for c in info["classes"]] == segmenter.meta.palette
    assert info["input_size"] is None and info["input_shape"] == [-1, 3, -1, -1]
    assert info["max_batch"] == 8 and info["limits"]["max_pixels"] == 4096 * 4096
    assert httpx.get(f"{server_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server_url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_metrics_count_requests_errors_and_batches(server_url):
    httpx.post(f"{server_url}/v1/segment", content=png_bytes(random_image()), headers={"Content-Type": "image/png"},
               timeout=30)
    httpx.post(f"{server_url}/v1/segment", content=b"not an image", headers={"Content-Type": "image/png"})
    text = httpx.get(f"{server_url}/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines['liteseg_requests_total{endpoint="/v1/segment",method="POST",status="200"}']) >= 1
    assert float(lines['liteseg_errors_total{code="invalid_image"}']) >= 1
    assert float(lines['liteseg_request_duration_seconds_count{endpoint="/v1/segment"}']) >= 2
    assert float(lines['liteseg_request_duration_seconds_bucket{endpoint="/v1/segment",le="+Inf"}']) >= 2
    assert float(lines["liteseg_batch_size_count"]) >= 1 and float(lines["liteseg_inference_seconds_sum"]) > 0
    assert "# TYPE liteseg_request_duration_seconds histogram" in text
    assert float(lines["liteseg_queue_depth"]) == 0


def test_metrics_count_each_route_by_its_template(segmenter):
    """A route added to the app is counted under its own template with nothing else to update; paths that match
    no route are "other"."""
    app = create_app(ServeConfig(), segmenter)

    @app.get("/v1/echo/{word}")
    async def echo(word: str) -> dict[str, str]:
        return {"word": word}

    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/v1/echo/hi", "/v1/echo/there", "/v2/models/liteseg", "/no/such/route"):
            client.get(path)
        client.delete("/healthz")
        text = client.get("/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    requests = {k[len("liteseg_requests_total"):]: float(v) for k, v in lines.items()
                if k.startswith("liteseg_requests_total{")}
    assert requests == {'{endpoint="/v1/echo/{word}",method="GET",status="200"}': 2,
                        '{endpoint="/v2/models/{name}",method="GET",status="200"}': 1,
                        '{endpoint="other",method="GET",status="404"}': 1,
                        '{endpoint="/healthz",method="DELETE",status="405"}': 1}


def test_openapi_schema_and_web_page(server_url):
    schema = httpx.get(f"{server_url}/openapi.json").json()
    segment = schema["paths"]["/v1/segment"]["post"]
    assert {"multipart/form-data", "image/png", "application/octet-stream"} <= set(segment["requestBody"]["content"])
    assert {"200", "400", "413", "415", "503"} <= set(segment["responses"])
    assert [p["name"] for p in segment["parameters"]] == ["format", "alpha", "rle", "overlay"]
    assert {"/v1/model", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    page = httpx.get(f"{server_url}/")
    assert page.status_code == 200 and 'id="file"' in page.text and "v1/segment" in page.text
