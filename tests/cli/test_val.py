"""``liteseg val`` end to end on a few CamVid val images (random weights, half resolution)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.formats.native import save_native
from liteseg.meta import ModelMeta

from ..conftest import randomize_, require_module


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


@pytest.fixture(scope="session")
def exported_val(camvid_dir, tmp_path_factory):
    """A random 11-class T, its ONNX export and its torch val report on the first 3 CamVid val images at 0.5,
    shared by the ONNX backends (session-scoped: the OpenVINO tests run last, see tests/conftest.py)."""
    require_module("onnx")
    folder = tmp_path_factory.mktemp("exported_val")
    root = folder / "camvid"
    root.mkdir()
    lines = (camvid_dir / "val.txt").read_text().splitlines()[:3]
    (root / "val.txt").write_text("".join(" ".join(str(camvid_dir / p) for p in ln.split()) + "\n" for ln in lines))
    model = _random_model(folder / "t.safetensors", 11)
    assert main(["export", str(model), "-o", str(folder / "t.onnx"), "--no-verify"]) == 0
    common = ["--data", f"camvid:{root}", "--scales", "0.5", "--num-workers", "0"]
    assert main(["val", "--model", str(model), "-o", str(folder / "torch"), "--device", "cpu", *common]) == 0
    return folder, common, json.loads((folder / "torch" / "metrics.json").read_text())


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_val_onnx_through_backend_matches_torch(backend, exported_val, tmp_path):
    require_module(backend)
    folder, common, reference = exported_val
    assert main(["val", "--model", str(folder / "t.onnx"), "--backend", backend, "-o", str(tmp_path / backend),
                 *common]) == 0
    ours = json.loads((tmp_path / backend / "metrics.json").read_text())
    assert ours["confusion"] == reference["confusion"]
    assert ours["metrics"]["miou"] == reference["metrics"]["miou"]


def test_val_exclude_absent_leaves_a_class_absent_everywhere_out_of_the_means(tmp_path):
    """Class 3 is in no label, and the model never predicts it (its classifier row ties with class 2's, and the
    first maximum wins): --exclude-absent averages over classes 0-2, the default over all 4."""
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=4)).eval()
    with torch.no_grad():
        model.seg_heads[0].conv_out.weight[3] = model.seg_heads[0].conv_out.weight[2]
    path = tmp_path / "m.safetensors"
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": dict(model.config), "meta": {}})
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (32, 48), dtype=np.uint8)).save(tmp_path / f"{i}_label.png")
    (tmp_path / "list.txt").write_text("0.png 0_label.png\n1.png 1_label.png\n")
    common = ["val", "--model", str(path), "--data", f"list:{tmp_path / 'list.txt'}", "--num-workers", "0"]
    assert main([*common, "-o", str(tmp_path / "all")]) == 0
    assert main([*common, "-o", str(tmp_path / "present"), "--exclude-absent"]) == 0
    every, present = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("all", "present"))
    cm = np.array(present["confusion"], np.float64)
    assert cm[:, 3].sum() == cm[3].sum() == 0 and present["metrics"]["absent_classes"] == [3]
    iou = np.diag(cm) / np.maximum(cm.sum(0) + cm.sum(1) - np.diag(cm), 1)
    assert present["metrics"]["miou"] == pytest.approx(iou[:3].mean())
    assert every["metrics"]["miou"] == pytest.approx(iou.mean()) and every["confusion"] == present["confusion"]
