"""PyTorch, ONNX Runtime and OpenVINO give the same logits and labels through one interface."""
from __future__ import annotations

import numpy as np
import pytest

from liteseg.inference.backends import create_backend
from liteseg.errors import LitesegError
from liteseg.export.onnx import export_onnx

from ..conftest import require_module

ONNX_BACKENDS = ["onnxruntime", "openvino"]


@pytest.fixture(autouse=True)
def _backend_installed(request):
    """A backend's package is a [dev] dependency: skipped locally when missing, a failure under CI=true."""
    if "backend" in request.fixturenames:
        require_module(request.getfixturevalue("backend"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fixture_model):
    folder = tmp_path_factory.mktemp("backends")
    export_onnx(fixture_model, folder / "logits.onnx", verify=False)
    export_onnx(fixture_model, folder / "labels.onnx", output="labels", include_preprocess=True,
                input_layout="nhwc", verify=False)
    return folder


@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_logits_agree_with_torch(exported, fixture_model, backend):
    x = np.random.default_rng(0).standard_normal((2, 3, 70, 90)).astype(np.float32)
    ref = create_backend(fixture_model)(x)
    out = create_backend(exported / "logits.onnx", backend, threads=2)(x)
    assert out.shape == ref.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_predict_agrees_with_torch_including_baked_in_preprocessing(exported, fixture_model, backend):
    images = np.random.default_rng(1).integers(0, 256, (2, 70, 90, 3), dtype=np.uint8)
    torch_backend = create_backend(fixture_model)
    logits = torch_backend.run_images(images)
    top2 = np.sort(logits, axis=1)[:, -2:]
    confident = (top2[:, 1] - top2[:, 0]) > 1e-3
    ref = torch_backend.predict(images)
    for name in ("logits.onnx", "labels.onnx"):
        b = create_backend(exported / name, backend)
        labels = b.predict(images)
        assert labels.shape == (2, 70, 90) and labels.dtype == np.int64
        assert np.array_equal(labels[confident], ref[confident])


def test_backend_built_from_a_model_file_exports_on_the_fly(fixture_dir, fixture_model):
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    backend = create_backend(fixture_dir / "weights.pdparams", "onnxruntime")
    assert backend.meta.num_classes == 19
    assert np.abs(backend(x) - create_backend(fixture_model)(x)).max() <= 1e-4


def test_graph_with_baked_in_preprocessing_refuses_float_input(exported):
    backend = create_backend(exported / "labels.onnx", "onnxruntime")
    with pytest.raises(LitesegError, match="takes uint8 images"):
        backend(np.zeros((1, 3, 32, 32), np.float32))


def test_stride_outputs_are_brought_to_input_size(tmp_path, fixture_model):
    """A 1/8-size ``stride`` graph's logits, resized by the backend, equal the eager model's (whose last op is that
    bilinear resize) at an input size that 8 does not divide."""
    export_onnx(fixture_model, tmp_path / "s.onnx", output_size="stride", verify=False)
    backend = create_backend(tmp_path / "s.onnx", "onnxruntime")
    x = np.random.default_rng(3).standard_normal((1, 3, 50, 66)).astype(np.float32)
    out, eager = backend(x), create_backend(fixture_model)(x)
    assert out.shape == eager.shape == (1, 19, 50, 66)
    assert np.abs(out - eager).max() <= 1e-4 * np.abs(eager).max()


def test_foreign_or_broken_onnx_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(LitesegError, match="not a readable ONNX model"):
        create_backend(bad, "onnxruntime")
    with pytest.raises(LitesegError, match="no such ONNX file"):
        create_backend(tmp_path / "missing.onnx", "onnxruntime")
