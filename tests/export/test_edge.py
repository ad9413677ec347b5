"""Edge exports (ExecuTorch, LiteRT/TFLite, ncnn): export -> run in the runtime -> compare with PyTorch; model files
through ``liteseg info``/``predict``/``val``; damaged files; the missing-extra message.

The fixture T with randomised weights at 1x3x64x96 (the 1/32 map is 2x3: SPPM's bin 2 and 4 pools do not divide
it, so the exact matrix pooling is exercised next to native pooling). One export per format and precision,
shared by the tests of this module.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from liteseg.cli.main import main
from liteseg.errors import FormatError, LitesegError
from liteseg.export.edge import export_edge, format_module
from liteseg.inference.backends import create_backend
from liteseg.inference.segmenter import Segmenter
from liteseg.loading.zoo import default_model

from ..conftest import randomize_, require_module

SHAPE = (1, 3, 64, 96)
CASES = [("executorch", "fp32"), ("executorch", "int8"), ("tflite", "fp32"), ("tflite", "fp16"),
         ("tflite", "int8"), ("ncnn", "fp32"), ("ncnn", "fp16")]
# CI runs fp32 of every format and LiteRT fp16 (it reuses the fp32 conversion); the three precisions that need a
# conversion of their own (about a minute each) run with `pytest -m edge_full tests/export/test_edge.py`
FULL_ONLY = {("executorch", "int8"), ("tflite", "int8"), ("ncnn", "fp16")}
RUN_CASES = [pytest.param(*case, marks=pytest.mark.edge_full) if case in FULL_ONLY else case for case in CASES]
FILE = {"executorch": "m.pte", "tflite": "m.tflite", "ncnn": "m_ncnn"}
BACKEND = {"executorch": "executorch", "tflite": "litert", "ncnn": "ncnn"}
PACKAGES = {"executorch": ("executorch", "torchao"), "tflite": ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
            "ncnn": ("pnnx", "ncnn")}
MIN_INT8_AGREEMENT = 0.9  # argmax agreement with float PyTorch on real CamVid images, random weights


@pytest.fixture(scope="module")
def model(fixture_model):
    return randomize_(copy.deepcopy(fixture_model), seed=31).eval()


@pytest.fixture(scope="module")
def camvid_images(camvid_dir):
    lines = (camvid_dir / "train.txt").read_text().split("\n")
    return [camvid_dir / line.split()[0] for line in lines[:2]]


@pytest.fixture(scope="module")
def exported(model, camvid_images, tmp_path_factory):
    """``get(fmt, precision)`` -> the exported path (exported once per module)."""
    root, cache = tmp_path_factory.mktemp("edge"), {}

    def get(fmt: str, precision: str):
        for package in PACKAGES[fmt]:
            require_module(package)
        if (fmt, precision) not in cache:
            path = root / precision / FILE[fmt]
            export_edge(model, path, fmt, precision, input_shape=SHAPE, verify=False,
                        calibration=camvid_images if precision == "int8" else ())
            cache[fmt, precision] = path
        return cache[fmt, precision]
    return get


def _inputs(camvid_images, meta) -> np.ndarray:
    """A real CamVid image resized to the export shape, normalised, and a random input."""
    image = np.asarray(Image.open(camvid_images[0]).convert("RGB").resize(SHAPE[:1:-1], Image.BILINEAR))
    real = ((image / 255.0 - meta.mean) / meta.std).transpose(2, 0, 1)[None].astype(np.float32)
    return np.concatenate([real, np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)])


@pytest.mark.parametrize("fmt,precision", RUN_CASES)
def test_export_runs_and_matches_pytorch(exported, model, camvid_images, fmt, precision):
    backend = create_backend(exported(fmt, precision))
    assert backend.name == BACKEND[fmt] and backend.precision == precision
    assert backend.meta.input_shape == list(SHAPE) and backend.meta.num_classes == 19
    inputs = _inputs(camvid_images, backend.meta)
    for x in inputs[:1] if precision == "int8" else inputs:  # int8 is calibrated for images, not noise
        with torch.no_grad():
            ref = model(torch.from_numpy(x[None])).numpy()
        got = backend(x[None])
        assert got.shape == ref.shape and got.dtype == np.float32
        diff, agreement = np.abs(got - ref).max(), (got.argmax(1) == ref.argmax(1)).mean()
        print(f"{fmt} {precision}: max abs diff {diff:.3g}, argmax agreement {agreement:.4f}")
        if precision == "fp32":
            assert diff <= 1e-4
        elif precision == "fp16":
            assert diff <= 0.02 * np.abs(ref).max() and agreement >= 0.98
        else:
            assert agreement >= MIN_INT8_AGREEMENT
    if (fmt, precision) == ("tflite", "int8"):  # full integer: int8 tensors in and out, not float I/O
        assert backend.runner.input["dtype"] == np.int8 and backend.runner.output["dtype"] == np.int8
    with pytest.raises(LitesegError, match="exported for input 1x3x64x96"):
        backend(np.zeros((1, 3, 64, 64), np.float32))


@pytest.mark.parametrize("fmt", ["executorch", "tflite", "ncnn"])
def test_model_file_through_info_predict_val(exported, model, camvid_dir, tmp_path, monkeypatch, capsys, fmt):
    path = exported(fmt, "fp32")
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["meta"]["input_shape"] == list(SHAPE) and len(info["meta"]["class_names"]) == 19
    assert info["edge"] == {"format": fmt, "precision": "fp32"}

    monkeypatch.chdir(tmp_path)
    image, label = (camvid_dir / p for p in (camvid_dir / "val.txt").read_text().split("\n")[0].split())
    Image.open(image).resize((120, 90)).save(tmp_path / "i.png")
    Image.open(label).resize((120, 90), Image.NEAREST).save(tmp_path / "l.png")
    assert main(["predict", "i.png", "--model", str(path), "-o", "out", "--save", "labels"]) == 0
    labels = np.asarray(Image.open(next((tmp_path / "out").rglob("labels/i.png"))))
    # the same resize to 64x96 and back, with PyTorch in place of the runtime
    reference = Segmenter(create_backend(model, "torch", meta=create_backend(path).meta)).predict_rgb(
        [np.asarray(Image.open("i.png").convert("RGB"))])[0].labels
    assert labels.shape == (90, 120) and (labels == reference).mean() >= 0.999

    # val, as for a fixed-shape ONNX graph, takes images of the model's size (or --slide)
    Image.open(image).resize((96, 64)).save(tmp_path / "v.png")
    Image.open(label).resize((96, 64), Image.NEAREST).save(tmp_path / "vl.png")
    (tmp_path / "val.txt").write_text("v.png vl.png\n")
    assert main(["val", "--data", "list:val.txt", "--model", str(path), "--num-workers", "0", "-o", "v"]) == 0
    assert f"backend {BACKEND[fmt]}" in capsys.readouterr().out
    assert 0 <= json.loads((tmp_path / "v" / "metrics.json").read_text())["metrics"]["miou"] <= 1


@pytest.mark.parametrize("fmt", ["executorch", "tflite", "ncnn"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_file_gets_one_clear_error(exported, tmp_path, capsys, fmt, damage):
    good = exported(fmt, "fp32")
    bad = tmp_path / good.name
    if good.is_dir():
        shutil.copytree(good, bad)
        target = bad / ("model.ncnn.bin" if damage == "truncated" else "model.ncnn.param")
    else:
        shutil.copy(good, bad)
        target = bad
    data = target.read_bytes()
    target.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"\x00garbage" * 64)
    with pytest.raises(FormatError, match=str(bad.name)):
        create_backend(bad)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "re-export" in err, err


@pytest.mark.parametrize("fmt", ["executorch", "tflite", "ncnn"])
def test_missing_extra_names_the_install_command(monkeypatch, tmp_path, fmt):
    module, package = {"executorch": ("executorch", "executorch"), "tflite": ("litert", "ai_edge_litert"),
                       "ncnn": ("ncnn", "ncnn")}[fmt]
    monkeypatch.setitem(sys.modules, package, None)  # import fails with ModuleNotFoundError(name=package)
    for name in (f"liteseg.export.{module}", f"liteseg.inference.{BACKEND[fmt]}_backend"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    extra = {"executorch": "executorch", "tflite": "litert", "ncnn": "ncnn"}[fmt]
    with pytest.raises(LitesegError, match=rf"pip install 'liteseg\[{extra}\]'"):
        format_module(fmt)
    path = tmp_path / FILE[fmt]
    path.mkdir() if fmt == "ncnn" else path.touch()
    if fmt == "ncnn":
        (path / "model.ncnn.param").touch()
    with pytest.raises(LitesegError, match=rf"pip install 'liteseg\[{extra}\]'"):
        create_backend(path)


def test_formats_option_lists_every_precision(fixture_dir, capsys):
    from liteseg.evaluation.formats import parse_formats

    assert parse_formats("all") == CASES
    assert parse_formats("ncnn:fp16,executorch") == [("ncnn", "fp16"), ("executorch", "fp32"), ("executorch", "int8")]
    with pytest.raises(LitesegError, match="ncnn:int8"):
        parse_formats("ncnn:int8")
    model = str(fixture_dir / "weights.pdparams")
    assert main(["benchmark", "--model", model, "--formats", "executorch:int8"]) == 2
    assert "--calib" in capsys.readouterr().err


def test_formats_table_has_latency_and_ratio_at_every_shape():
    from liteseg.evaluation.formats import FormatResult, FormatsReport, formats_table

    small, large = [1, 3, 360, 480], [1, 3, 512, 1024]
    report = FormatsReport(results=[
        FormatResult("onnx", "fp32", small, bytes=32_100_000, max_abs_diff=9e-6, p50_ms=80.0, ratio_vs_ort=1.0,
                     miou=0.6, agreement=1.0),
        FormatResult("tflite", "int8", small, bytes=8_400_000, max_abs_diff=3.1, p50_ms=40.0, ratio_vs_ort=0.5,
                     miou=0.59, agreement=0.99),
        FormatResult("onnx", "fp32", large, bytes=32_100_000, max_abs_diff=1e-5, p50_ms=200.0, ratio_vs_ort=1.0),
        FormatResult("tflite", "int8", large, status="failed: EdgeExportError: does not match")])
    lines = formats_table(report).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head == ["format", "precision", "status", "size MB", "max abs diff", "p50 ms 1x3x360x480",
                    "vs ORT fp32 1x3x360x480", "p50 ms 1x3x512x1024", "vs ORT fp32 1x3x512x1024", "mIoU", "agreement"]
    rows = {tuple(c.strip() for c in line.strip("|").split("|"))[:2]: [c.strip() for c in line.strip("|").split("|")]
            for line in lines[2:]}
    assert len(lines) == 4 and set(rows) == {("onnx", "fp32"), ("tflite", "int8")}
    assert rows["onnx", "fp32"][2:] == ["ran", "32.1", "1e-05", "80.0", "1.00", "200.0", "1.00", "0.6000", "100.00%"]
    assert rows["tflite", "int8"][2:] == ["1x3x512x1024: failed: EdgeExportError: does not match", "8.4", "3.1",
                                          "40.0", "0.50", "–", "–", "0.5900", "99.00%"]


NATIVE_POOL_SHAPE = (1, 3, 128, 256)  # the 1/32 map is 4x8: every SPPM bin (1, 2, 4) divides it


def test_tflite_int8_pools_with_matmul_and_a_converter_failure_is_one_clear_error(model, camvid_images, tmp_path,
                                                                                monkeypatch, capsys):
    """LiteRT int8 gets SPPM's matmul pools where the other exports keep native pooling (its int8 average pool
    forces one scale onto the concat before it: the converter refused 512x1024); a converter's own exception is
    one EdgeExportError naming format, precision, shape and reason, and nothing is written."""
    require_module("ai_edge_litert")
    litert, pools_seen = format_module("tflite"), []

    def failing_write(prepared, path, precision, calibration, metadata):
        pools_seen.append(prepared.sppm_pool)
        raise ValueError("Failed to run converter passes: same scale constraint\nmore detail")

    monkeypatch.setattr(litert, "write", failing_write)
    path = tmp_path / "m.tflite"
    with pytest.raises(LitesegError, match=r"the tflite int8 conversion failed at input shape 1x3x128x256 "
                                           r"\(ValueError: Failed to run converter passes: same scale constraint\)"):
        export_edge(model, path, "tflite", "int8", input_shape=NATIVE_POOL_SHAPE, calibration=camvid_images)
    with pytest.raises(LitesegError, match="tflite fp16 conversion failed"):
        export_edge(model, path, "tflite", "fp16", input_shape=NATIVE_POOL_SHAPE)
    assert pools_seen == ["matmul", "native"] and not path.exists() and not list(tmp_path.iterdir())
    # through the CLI: one error line, no traceback
    assert main(["export", "camvid", "--format", "tflite", "--precision", "int8", "--calib", str(camvid_images[0]),
                 "--input-shape", "1,3,128,256", "-o", str(path)]) != 0
    err = capsys.readouterr().err
    assert "conversion failed at input shape 1x3x128x256" in err and "Traceback" not in err


@pytest.mark.edge_full
def test_tflite_int8_converts_where_every_pool_is_native(camvid_images, tmp_path):
    """The shipped model at a shape whose 1/32 map every SPPM bin divides: LiteRT's converter refused it with
    native pools ("same scale constraint"); it converts and passes the int8 check."""
    for package in PACKAGES["tflite"]:
        require_module(package)
    report = export_edge(default_model(), tmp_path / "m.tflite", "tflite", "int8", input_shape=NATIVE_POOL_SHAPE,
                         calibration=camvid_images)
    assert report.check.ok and report.check.agreement >= MIN_INT8_AGREEMENT
