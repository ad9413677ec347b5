"""``liteseg export`` and ``liteseg convert X.tgz -o m.onnx`` (the seed flow without Paddle)."""
from __future__ import annotations

import numpy as np
import pytest

from liteseg.cli.main import main
from liteseg.inference.backends import create_backend
from liteseg.export.onnx import ort_session

from tests.formats.paddle_variants import fixed_shape, make_tgz

from ..conftest import require_module

onnx = require_module("onnx")


def _input_dims(path) -> list:
    return [d.dim_value or d.dim_param for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]


def test_export_cli_fixed_shape(tmp_path, fixture_dir, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(out), "--input-shape", "1,3,64,128",
                 "--opset", "11"]) == 0
    assert _input_dims(out) == [1, 3, 64, 128]
    assert "max abs diff" in capsys.readouterr().out


def test_export_cli_registry_name_and_options(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "pp_liteseg_t", "--num-classes", "11", "-o", str(out), "--output", "labels",
                 "--labels-dtype", "uint8", "--include-preprocess", "--input-layout", "nhwc", "--no-verify"]) == 0
    x = np.zeros((1, 48, 64, 3), np.uint8)
    labels = ort_session(out).run(None, {"x": x})[0]
    assert labels.shape == (1, 48, 64) and labels.dtype == np.uint8
    assert create_backend(out, "onnxruntime").meta.num_classes == 11


def test_export_cli_registry_name_with_weights(tmp_path, fixture_dir, fixture_model, capsys):
    """--weights loads the file into the named architecture: the graph computes the fixture model, not an init."""
    import torch

    out = tmp_path / "w.onnx"
    weights = str(fixture_dir / "weights.pdparams")
    assert main(["export", "pp_liteseg_t", "--weights", weights, "-o", str(out), "--input-shape", "1,3,64,96"]) == 0
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 96)).astype(np.float32)
    got = ort_session(out).run(None, {"x": x})[0]
    with torch.no_grad():
        ref = fixture_model(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert create_backend(out, "onnxruntime").meta.num_classes == fixture_model.config["num_classes"]
    capsys.readouterr()
    assert main(["export", "pp_liteseg_b", "--weights", weights, "-o", str(tmp_path / "b.onnx")]) == 2
    assert "not a pp_liteseg_b" in capsys.readouterr().err
    assert main(["export", weights, "--weights", weights, "-o", str(tmp_path / "c.onnx")]) == 2
    assert "--weights/--num-classes go with a registered model name" in capsys.readouterr().err


def test_export_cli_errors_are_one_line(tmp_path, fixture_dir, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"x")
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(tmp_path / "a.onnx"),
                 "--input-shape", "1,3,512"]) == 2
    assert "N,3,H,W" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(1, 3, 64, 128), None])
def test_convert_fastdeploy_tarball_to_onnx(tmp_path, fixture_dir, shape):
    folder = tmp_path / "PP_LiteSeg_infer"
    if shape:
        fixed_shape(fixture_dir / "inference", folder, shape)
        expected = list(shape)
    else:
        folder.mkdir()
        for name in ("model.pdmodel", "model.pdiparams", "deploy.yaml"):
            (folder / name).write_bytes((fixture_dir / "inference" / name).read_bytes())
        expected = ["batch", 3, "height", "width"]
    tgz = make_tgz(folder, tmp_path / "PP_LiteSeg_infer.tgz", "PP_LiteSeg_infer")
    out = tmp_path / "model.onnx"
    assert main(["convert", str(tgz), "-o", str(out)]) == 0
    assert _input_dims(out) == expected
    backend = create_backend(out, "onnxruntime")
    assert backend.meta.source_format == "paddle_inference"
