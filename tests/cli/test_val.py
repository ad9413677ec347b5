"""``liteseg val`` end to end on a few CamVid val images (random weights, half resolution)."""
from __future__ import annotations

import json

import pytest
import torch

import liteseg
from liteseg.cli.main import main
from liteseg.formats.native import save_native
from liteseg.meta import ModelMeta

from ..conftest import require_module


def _random_model(path, num_classes):
    torch.manual_seed(0)
    model = liteseg.create_model("pp_liteseg_t", num_classes=num_classes)
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=num_classes, config=dict(model.config), trained=False)
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": dict(model.config),
                                           "meta": meta.to_dict()})
    return path


@pytest.fixture
def camvid_subset(camvid_dir, tmp_path):
    """A CamVid root whose val.txt lists the first 3 val images (absolute paths)."""
    root = tmp_path / "camvid"
    root.mkdir()
    lines = (camvid_dir / "val.txt").read_text().splitlines()[:3]
    (root / "val.txt").write_text("".join(" ".join(str(camvid_dir / p) for p in ln.split()) + "\n" for ln in lines))
    return root


def test_val_camvid_end_to_end(camvid_subset, tmp_path, capsys):
    model = _random_model(tmp_path / "t.safetensors", 11)
    out = tmp_path / "report"
    argv = ["val", "--model", str(model), "--data", f"camvid:{camvid_subset}", "-o", str(out), "--scales", "0.5",
            "--flip", "--num-workers", "1", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 images | mIoU" in printed and "images/s" in printed and "Bicyclist" in printed
    data = json.loads((out / "metrics.json").read_text())
    assert data["num_images"] == 3 and len(data["metrics"]["class_iou"]) == 11
    assert data["protocol"]["scales"] == [0.5] and data["protocol"]["flip"] is True
    assert sum(map(sum, data["confusion"])) == data["metrics"]["num_pixels"] > 0
    report = (out / "report.md").read_text()
    assert "not trained" in report and "| Sky |" in report
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "class_iou.png").stat().st_size > 0
    assert main(argv) == 2  # never overwrites silently
    assert "already exists" in capsys.readouterr().err
    assert main(argv + ["--exist-ok", "--legacy-aug", "--slide", "160x128,120x96", "--num-workers", "0"]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["protocol"]["legacy_aug"] is True and data["protocol"]["slide"] == [[160, 128], [120, 96]]


def test_val_errors_are_one_line(camvid_subset, tmp_path, capsys):
    model = _random_model(tmp_path / "t19.safetensors", 19)
    assert main(["val", "--model", str(model), "--data", f"camvid:{camvid_subset}", "-o", str(tmp_path / "o"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "predicts 19 classes" in err and "Traceback" not in err
    assert main(["val", "--model", str(model), "--data", "pascal:/x", "-o", str(tmp_path / "o")]) == 2
    assert "unknown kind 'pascal'" in capsys.readouterr().err
    assert main(["val", "--model", str(model), "--data", f"camvid:{camvid_subset}", "-o", str(tmp_path / "o"),
                 "--slide", "12"]) == 2
    assert "CROP,STRIDE" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_val_onnx_through_backend_matches_torch(backend, camvid_subset, tmp_path):
    require_module(backend)
    model = _random_model(tmp_path / "t.safetensors", 11)
    assert main(["export", str(model), "-o", str(tmp_path / "t.onnx"), "--no-verify"]) == 0
    common = ["--data", f"camvid:{camvid_subset}", "--scales", "0.5", "--num-workers", "0"]
    assert main(["val", "--model", str(model), "-o", str(tmp_path / "torch"), "--device", "cpu", *common]) == 0
    assert main(["val", "--model", str(tmp_path / "t.onnx"), "--backend", backend, "-o", str(tmp_path / backend),
                 *common]) == 0
    ours, reference = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in (backend, "torch"))
    assert ours["confusion"] == reference["confusion"]
    assert ours["metrics"]["miou"] == reference["metrics"]["miou"]
