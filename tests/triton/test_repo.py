"""``liteseg export --format triton``: the Python-backend model loaded by the bundled tritonserver and queried; the
ONNX Runtime / TensorRT variant (no backend for it here) checked by parsing its config.pbtxt into Triton's
ModelConfig protobuf and by running its ONNX against the model."""
from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from liteseg.cli.main import main
from liteseg.serve.triton import TritonOptions, start_triton
from liteseg.utils.net import free_ports

from ..serve.conftest import png_bytes
from .conftest import NUM_CLASSES, reference_labels

IMAGES = [np.random.RandomState(10 + s).randint(0, 256, (h, w, 3), dtype=np.uint8)
          for s, (h, w) in enumerate([(40, 56), (40, 56), (29, 61)])]


@pytest.fixture(scope="module")
def repo(model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "repo"
    assert main(["export", str(model_file), "--format", "triton", "-o", str(out)]) == 0
    return out


def _config(path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_layout_and_configs_parse_as_triton_model_configs(repo):
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()) == [
        "liteseg/1/model.py", "liteseg/1/model.safetensors", "liteseg/config.pbtxt",
        "liteseg_onnx/1/model.onnx", "liteseg_onnx/config.pbtxt"]
    python = _config(repo / "liteseg" / "config.pbtxt")
    assert python.backend == "python" and python.max_batch_size == 8 and python.dynamic_batching is not None
    assert [(i.name, i.data_type, list(i.dims), i.optional) for i in python.input] == [
        ("IMAGE", model_config_pb2.TYPE_STRING, [1], True), ("PIXELS", model_config_pb2.TYPE_UINT8, [-1, -1, 3], True)]
    assert [(o.name, list(o.dims)) for o in python.output] == [("LABELS", [-1, -1]), ("PROBS", [NUM_CLASSES, -1, -1])]
    onnx = _config(repo / "liteseg_onnx" / "config.pbtxt")
    assert onnx.platform == "onnxruntime_onnx" and onnx.max_batch_size == 8
    assert onnx.dynamic_batching.max_queue_delay_microseconds == 5000
    assert [(i.name, i.data_type, list(i.dims)) for i in onnx.input] == [
        ("x", model_config_pb2.TYPE_UINT8, [-1, -1, 3])]
    assert [(o.name, o.data_type, list(o.dims)) for o in onnx.output] == [
        ("labels", model_config_pb2.TYPE_UINT8, [-1, -1])]
    assert onnx.optimization.execution_accelerators.gpu_execution_accelerator[0].name == "tensorrt"


def test_onnx_variant_bakes_in_preprocessing_with_dynamic_batch_and_size(repo, model_file):
    session = ort.InferenceSession(str(repo / "liteseg_onnx" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (feed,), (out,) = session.get_inputs(), session.get_outputs()
    assert (feed.name, out.name) == ("x", "labels") and feed.type == "tensor(uint8)"
    assert not isinstance(feed.shape[0], int) and not isinstance(feed.shape[1], int) and feed.shape[3] == 3
    pair = session.run(None, {"x": np.stack(IMAGES[:2])})[0]  # batch of 2
    odd = session.run(None, {"x": IMAGES[2][None]})[0]  # another size
    for labels, image in ((pair[0], IMAGES[0]), (pair[1], IMAGES[1]), (odd[0], IMAGES[2])):
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, reference_labels(model_file, image))


@pytest.fixture(scope="module")
def served(repo, tmp_path_factory):
    """The exported Python-backend model in the tritonserver bundled with nvidia-pytriton (which has no ONNX
    Runtime backend, so the repository it loads is the export without liteseg_onnx)."""
    python_only = tmp_path_factory.mktemp("served") / "repo"
    shutil.copytree(repo / "liteseg", python_only / "liteseg")
    http, grpc, metrics = free_ports(3)
    triton = start_triton(None, TritonOptions(http_port=http, grpc_port=grpc, metrics_port=metrics), python_only,
                          write=False)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{http}")
    yield client
    client.close()
    triton.stop()


def test_bundled_tritonserver_serves_the_exported_model(served, model_file):
    for image in IMAGES[1:]:
        for name, array, datatype in (("PIXELS", image[None], "UINT8"),
                                      ("IMAGE", np.array([[png_bytes(image)]], dtype=object), "BYTES")):
            tensor = httpclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            answer = served.infer("liteseg", [tensor], outputs=[httpclient.InferRequestedOutput("LABELS")])
            np.testing.assert_array_equal(answer.as_numpy("LABELS")[0], reference_labels(model_file, image))
    bad = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
    bad.set_data_from_numpy(np.array([[b"GIF89a broken"]], dtype=object))
    with pytest.raises(InferenceServerException) as error:
        served.infer("liteseg", [bad])
    assert error.value.status() == "400" and "invalid_image" in error.value.message()
    assert served.is_model_ready("liteseg")
