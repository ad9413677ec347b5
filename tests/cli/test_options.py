"""Every command checks its options before any work: a bad value is one 'error:' line, exit 2, nothing written."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from liteseg.cli import options
from liteseg.cli.main import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Read-only inputs: one image, a corrupt .pdparams, a labelled list, a text file."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "images").mkdir()
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(root / "images" / "a.png")
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(root / "label.png")
    (root / "list.txt").write_text(f"{root / 'images' / 'a.png'} {root / 'label.png'}\n")
    (root / "weights.pdparams").write_bytes(b"\x80\x04not a pickle at all")
    (root / "notes.txt").write_text("hello\n")
    return root


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _cases(i: Path, busy: int) -> list[list[str]]:
    img, data = str(i / "images"), f"list:{i / 'list.txt'}"
    return [
        ["predict", img, "--alpha", "3"], ["predict", img, "--alpha", "nan"], ["predict", img, "--device", "foo"],
        ["predict", img, "--device", "cuda:7"], ["predict", img, "--threads", "-1"],
        ["predict", img, "--batch-size", "0"],
        ["predict", img, "--backend", "onnxruntime", "--half"], ["predict", img, "--backend", "onnxruntime",
                                                                "--device", "mps"],
        ["predict", img, "--backend", "nope"], ["predict", img, "--tile", "12"], ["predict", img, "--save", "x"],
        ["predict", str(i / "missing")], ["predict", img, "--model", str(i / "missing.pt")], ["predict"],
        ["val", "--data", data, "--num-workers", "-1"], ["val", "--data", data, "--scales", "0"],
        ["val", "--data", data, "--slide", "x"], ["val", "--data", data, "--model", str(i / "missing.pt")],
        ["val", "--data", "pascal:/x", "-o", "out"], ["val", "--data", data, "--device", "cuda:7"],
        ["train", "--resume", str(i / "weights.pdparams")], ["train", "--resume", str(i / "notes.txt")],
        ["train", "--resume", str(i / "missing.pt")], ["train", "model.nope=1"],
        ["data", "check", "pascal:/x", "-o", "out"], ["data", "check", data, "--label-map", "255"],
        ["data", "check", data, "--allow", "everything"],
        ["data", "convert", "labelme", str(i / "missing.json"), "-o", "out"],
        ["convert", str(i / "weights.pdparams"), "-o", "out.xyz"], ["convert", str(i / "weights.pdparams"),
                                                                    "-o", "out.safetensors"],
        ["export", "pp_liteseg_t", "-o", "out.onnx", "--opset", "3"],
        ["export", "pp_liteseg_t", "-o", "out.onnx", "--num-classes", "0"], ["export", "pp_liteseg_t", "-o", "out.txt"],
        ["quantize", "m.onnx", "-o", "out.onnx", "--calib", img, "--num-calib", "0"],
        ["quantize", "m.onnx", "-o", "out.onnx", "--calib", img, "--runs", "0"],
        ["quantize", str(i / "missing.onnx"), "-o", "out.onnx", "--calib", img],
        ["benchmark", "--model", "camvid", "--runs", "0"], ["benchmark", "--model", "camvid", "--warmup", "-1"],
        ["benchmark", "--model", "camvid", "--threads", "-2"], ["benchmark", "--model", "camvid", "--backend", "bogus"],
        ["benchmark", "--model", "camvid", "--shape", "1,3,x", "--json", "out.json"],
        ["serve", "--port", "70000"], ["serve", "--port", "0"], ["serve", "--workers", "0"],
        ["serve", "--max-upload-mb", "0"], ["serve", "--max-wait-ms", "-1"], ["serve", "--device", "foo"],
        ["serve", "--port", str(busy)], ["serve", "--model", str(i / "missing.pt")],
        ["info", str(i / "missing.pt")], ["info", str(i / "weights.pdparams")], ["bogus-command"], [],
    ]


def test_bad_options_of_every_command(inputs, busy_port, tmp_path, monkeypatch, capsys):
    """One rule across the CLI: every command and many bad values; each must fail cleanly before writing."""
    monkeypatch.chdir(tmp_path)
    cases = _cases(inputs, busy_port)
    assert {c[0] for c in cases if c} >= {"predict", "val", "train", "convert", "export", "quantize", "benchmark",
                                           "serve", "info"}
    before = sorted(inputs.rglob("*"))
    for argv in cases:
        if "cuda:7" in argv and torch.cuda.device_count() > 7:
            continue
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(options.ERROR_PREFIX), (argv, err)
        assert "Traceback" not in err and "SystemError" not in err, argv
        assert list(tmp_path.iterdir()) == [], (argv, list(tmp_path.iterdir()))
    assert sorted(inputs.rglob("*")) == before


def test_cuda_on_a_cpu_only_torch(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["predict", str(inputs / "images"), "--device", "cuda"]) == 2
    assert "no usable CUDA device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_quantize_without_onnxruntime_names_a_real_extra(inputs, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    assert main(["quantize", "m.onnx", "-o", "out.onnx", "--calib", str(inputs / "images")]) == 2
    err = capsys.readouterr().err
    assert "needs onnxruntime" in err and "pip install 'liteseg[onnx]'" in err and "pip install -e '.[onnx]'" in err


def test_version(capsys):
    import tomllib

    import liteseg

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"liteseg {liteseg.__version__}"
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "liteseg.__version__"}  # one source: the package's __version__


def test_unknown_names_and_values_get_a_suggestion(inputs, tmp_path, monkeypatch, capsys):
    """Each command's checks, and argparse's choices, name the close valid value (difflib), not only the list."""
    monkeypatch.chdir(tmp_path)
    img, weights = str(inputs / "images"), str(inputs / "weights.pdparams")
    cases = [
        (["predcit", img], "did you mean 'predict'?"),
        (["predict", img, "--backend", "onnxruntim"], "did you mean 'onnxruntime'?"),
        (["predict", img, "--model", "pp_liteseg_t.camvd"], "did you mean 'pp_liteseg_t.camvid'"),
        (["val", "--data", "camvd:/x", "--model", weights], "did you mean 'camvid'?"),
        (["export", "pp_liteseg_t", "-o", "m.onnx", "--format", "tflit"], "did you mean 'tflite'?"),
        (["convert", weights, "-o", "m.onx"], "did you mean '.onnx'?"),
        (["benchmark", "--model", "camvid", "--backend", "torch-op"], "did you mean 'torch-opt'"),
        (["train", "data.train=camvid:/x", "train.iterz=3"], "did you mean 'train.iters'?"),
        (["train", "data.train=camvid:/x", "loss.type=ohme"], "did you mean 'ohem'?"),
        (["data", "check", "camvid:/x", "--class-names", "a,b"], "--class-names applies to list:/folders: datasets"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Exception, match="N,3,H,W"):  # one shape rule: 4 channels are not an RGB input
        options.fixed_shape("1,4,64,64")
