"""A model file is a model everywhere; install hints; output modes; predict and val conveniences."""
from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liteseg.cli.main import main

from ..conftest import require_module

REPO = Path(__file__).resolve().parents[2]


def test_every_install_hint_names_a_real_extra():
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = []
    for path in (REPO / "src" / "liteseg").rglob("*.py"):
        text = path.read_text()
        named += [(path.name, m) for m in re.findall(r"liteseg\[([^\]{}]+)\]", text)]
        named += [(path.name, m) for m in re.findall(r"install_hint\(['\"]([^'\"]+)['\"]\)", text)]
    assert named and all(extra in extras for _, extra in named), [n for n in named if n[1] not in extras]
    from liteseg.inference import backends

    lazy_extras = {backends.BACKENDS.entry(name).extra for name in backends.BACKENDS} - {None}
    assert lazy_extras and lazy_extras <= extras


def test_safetensors_output_is_0644(fixture_dir, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["convert", str(fixture_dir / "weights.pdparams"), "-o", str(tmp_path / "m.safetensors")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    require_module("onnxruntime")
    path = tmp_path_factory.mktemp("onnx") / "t.onnx"
    assert main(["export", "camvid", "-o", str(path), "--no-verify", "--include-preprocess",
                 "--input-layout", "nhwc"]) == 0
    return path


def test_onnx_is_a_model_for_predict_info_and_benchmark(onnx_model, images, tmp_path, capsys):
    assert main(["predict", str(images), "--model", str(onnx_model), "-o", str(tmp_path / "p")]) == 0
    out = capsys.readouterr()
    assert "(onnxruntime)" in out.out and sorted(os.listdir(tmp_path / "p" / "labels")) == ["0.png", "1.png"]
    assert "2/2" in out.err  # the progress bar knows its total
    assert main(["info", str(onnx_model)]) == 0
    text = capsys.readouterr().out
    assert "liteseg export" in text and "uint8 nhwc" in text and "classes:     11: Sky" in text
    assert main(["info", str(onnx_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["arch"] == "pp_liteseg_t"
    assert main(["benchmark", "--model", str(onnx_model), "--backend", "all", "--shape", "1,3,32,32",
                 "--warmup", "0", "--runs", "1"]) == 0
    table = capsys.readouterr().out
    assert "onnxruntime" in table and not re.search(r"^\s*torch", table, re.M)
    assert main(["benchmark", "--model", str(onnx_model), "--backend", "torch"]) == 2
    assert "runs in onnxruntime or openvino" in capsys.readouterr().err


def test_nhwc_export_reports_its_input_as_the_graph_takes_it():
    require_module("onnx")
    from liteseg.export.metadata import ExportInfo
    from liteseg.export.onnx import ExportReport
    from liteseg.meta import ModelMeta

    meta = ModelMeta(arch="pp_liteseg_t", num_classes=2)
    for layout, shape, text in [("nhwc", [1, 3, -1, 512], "input 1x?x512x3 uint8 nhwc"),
                                ("nchw", [1, 3, -1, 512], "input 1x3x?x512 uint8 nchw")]:
        info = ExportInfo(preprocess=True, input_layout=layout)
        assert text in ExportReport(Path("m.onnx"), info, meta, shape).summary()


def test_convert_to_onnx_says_wrote_once(tmp_path, capsys):
    require_module("onnxruntime")
    assert main(["convert", "camvid", "-o", str(tmp_path / "m.onnx"), "--input-shape", "1,3,64,96"]) == 0
    assert capsys.readouterr().out.count("wrote") == 1


def test_a_run_where_every_image_fails_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    assert main(["predict", "in"]) == 1
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_video_progress_counts_frames(tmp_path, capsys):
    cv2 = require_module("cv2")
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert main(["predict", str(path), "-o", str(tmp_path / "out"), "--save", "labels"]) == 0
    out = capsys.readouterr()
    assert "3/3" in out.err and "frame/s" in out.err and "3 frame(s) segmented" in out.out


def test_val_defaults_to_the_shipped_model_and_numbered_runs(camvid_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = (camvid_dir / "val.txt").read_text().split("\n")[0]
    image, label = (Image.open(camvid_dir / p) for p in line.split())
    image.resize((120, 90)).save(tmp_path / "i.png")
    label.resize((120, 90), Image.NEAREST).save(tmp_path / "l.png")
    (tmp_path / "val.txt").write_text("i.png l.png\n")
    for run in ("exp", "exp2"):
        assert main(["val", "--data", "list:val.txt", "--num-workers", "0", "--device", "cpu"]) == 0
        assert ("model the default model: PP-LiteSeg-T, CamVid street scenes, 11 classes, 480x360, the shipped default "
                "model; backend torch") in capsys.readouterr().out
        assert (tmp_path / "runs" / "val" / run / "metrics.json").is_file()
