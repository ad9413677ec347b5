"""Serving an exported ONNX model through ONNX Runtime: same API, same labels as the PyTorch model."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

import liteseg
from liteseg.serve.app import ServeConfig, create_app
from liteseg.serve.codecs import rle_decode

from ..conftest import require_module
from .conftest import ThreadedServer, png_bytes, random_image

require_module("onnx")
require_module("onnxruntime")
from liteseg.export.onnx import export_onnx  # noqa: E402  (our own module: an ImportError there is a failure)


def test_onnxruntime_backend_serves_the_same_labels(serve_model_file, segmenter, tmp_path):
    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(liteseg.load(serve_model_file).model, onnx_path, verify=False)
    seg = liteseg.Segmenter(str(onnx_path), backend="onnxruntime", batch_size=4)
    with ThreadedServer(create_app(ServeConfig(model=str(onnx_path), max_batch=4), seg)) as server:
        info = httpx.get(f"{server.url}/v1/model").json()
        assert info["backend"] == "onnxruntime" and info["name"] == "tiny.onnx"
        image = random_image(40, 56, seed=5)
        body = httpx.post(f"{server.url}/v1/segment", params={"rle": "true"}, content=png_bytes(image),
                          headers={"Content-Type": "image/png"}, timeout=60).json()
    expected = segmenter.predict_rgb([image])[0].labels
    served = np.full(expected.shape, -1)
    for entry in body["classes"]:
        served[rle_decode(entry["rle"])] = entry["id"]
    assert (served == expected).mean() > 0.999
