"""INT8 static quantization and its report, on tiny generated images."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from liteseg.cli.main import main
from liteseg.inference.backends import create_backend
from liteseg.errors import LitesegError
from liteseg.export.onnx import export_onnx
from liteseg.quantize import QuantizeReport, compare_int8, list_images, quantize_onnx

from .conftest import require_module

onnx = require_module("onnx")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("qdata")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        label = rng.integers(0, 19, (48, 64), dtype=np.uint8)
        label[:4] = 255
        Image.fromarray(label).save(root / "labels" / f"{i}.png")
        lines.append(f"images/{i}.png labels/{i}.png")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, fixture_model):
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(fixture_model, path, verify=False)
    return path


def test_quantize_and_report(tmp_path, data, fp32):
    out = tmp_path / "int8.onnx"
    excluded = quantize_onnx(fp32, out, list_images(data / "images"))
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert excluded and excluded[0] in {n.name for n in model.graph.node if n.op_type == "Resize"}
    backend = create_backend(out, "onnxruntime")
    assert backend.info.quantized.startswith("int8") and backend.meta.num_classes == 19
    report = compare_int8(fp32, out, QuantizeReport(out, 3, excluded), labelled=[
        (data / f"images/{i}.png", data / f"labels/{i}.png") for i in range(3)], bench_shape=(1, 3, 48, 64), runs=2)
    assert report.eval_images == 3 and math.isfinite(report.fp32_miou) and math.isfinite(report.int8_miou)
    assert report.fp32_ms > 0 and report.int8_ms > 0 and "speed-up" in report.summary()
    with pytest.raises(LitesegError, match="already quantized"):
        quantize_onnx(out, tmp_path / "again.onnx", list_images(data / "images"))


def test_quantize_cli(tmp_path, data, fp32, capsys, caplog):
    out = tmp_path / "int8.onnx"
    assert main(["quantize", str(fp32), "-o", str(out), "--calib", str(data / "val.txt"), "--num-calib", "2",
                 "--eval-list", str(data / "val.txt"), "--bench-shape", "1,3,48,64", "--runs", "2"]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "calibrated on 2 images" in text and "mIoU FP32" in text
    int8_miou = text.split("-> INT8 ")[1].split()[0]
    assert main(["info", str(out)]) == 0  # the INT8 model's own mIoU is recorded (tests/export/test_papercuts.py)
    assert f"metrics:     miou {int8_miou}, " in capsys.readouterr().out
    # ONNX Runtime's shape-inference advice does not apply to liteseg's graphs and is not shown
    assert "pre-processing before quantization" not in captured.err + caplog.text
    assert main(["quantize", str(fp32), "-o", str(tmp_path / "x.onnx"), "--calib", str(tmp_path / "nope")]) == 2
    assert "no such image folder" in capsys.readouterr().err


def test_int8_of_the_shipped_model_keeps_its_accuracy_on_camvid(tmp_path, camvid_dir):
    """docs/deployment.md: with the shipped CamVid model, INT8 labels equal FP32 on 99.51 % of val pixels and
    mIoU moves by +0.0008. Here: 4 calibration and 6 val images at full size, with margins for the smaller sets
    (>= 98 % agreement, |mIoU change| <= 0.02; a broken INT8 graph, e.g. uncalibrated scales, falls far below)."""
    val = [line.split() for line in (camvid_dir / "val.txt").read_text().split("\n") if line.strip()][::17][:6]
    train = [camvid_dir / line.split()[0] for line in (camvid_dir / "train.txt").read_text().split("\n")
             if line.strip()][::50][:4]
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    export_onnx("camvid", fp32, verify=False)
    excluded = quantize_onnx(fp32, int8, train)
    report = compare_int8(fp32, int8, QuantizeReport(int8, len(train), excluded),
                          labelled=[(camvid_dir / i, camvid_dir / la) for i, la in val])
    assert report.eval_images == 6
    assert report.fp32_miou > 0.4  # the trained model, not random weights
    assert report.agreement >= 0.98, report.summary()
    assert abs(report.int8_miou - report.fp32_miou) <= 0.02, report.summary()
