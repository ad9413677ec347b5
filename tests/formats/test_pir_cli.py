"""The Paddle 3 seed flow through the real CLI: ``liteseg info | convert | export | predict | val`` on PIR packages."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import liteseg
from liteseg.cli.main import main
from liteseg.export.onnx import ort_session

from ..conftest import _require
from .pir_variants import assemble, pack


@pytest.fixture(scope="module")
def pir_tar(shared_dir, tmp_path_factory):
    pir_dir = _require(shared_dir / "fixtures" / "pp_liteseg_t_pir")
    root = tmp_path_factory.mktemp("pir")
    folder = assemble(pir_dir, "inference", root / "PP-LiteSeg-T_infer")
    return pack(folder, root / "PP-LiteSeg-T_infer.tar", "PP-LiteSeg-T_infer")


def _input_dims(path) -> list:
    return [d.dim_value or d.dim_param for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]


def test_info_names_format_and_version(pir_tar, capsys):
    assert main(["info", str(pir_tar)]) == 0
    out = capsys.readouterr().out
    assert "Paddle 3 PIR program inference.json (PIR version 4), PP-LiteSeg-T" in out and "pp_liteseg_t" in out
    assert main(["info", str(pir_tar), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["extra"]["pir_version"] == 4 and meta["extra"]["program_format"] == "PIR"


def test_convert_tar_to_dynamic_onnx(pir_tar, tmp_path, fixture_inputs, fixture_logits):
    out = tmp_path / "model.onnx"
    assert main(["convert", str(pir_tar), "-o", str(out)]) == 0
    assert _input_dims(out) == ["batch", 3, "height", "width"]
    session = ort_session(out)
    assert np.abs(session.run(None, {"x": fixture_inputs["256x512"]})[0] - fixture_logits["256x512"]).max() <= 1e-4
    model = liteseg.load(pir_tar).model
    rng = np.random.RandomState(1)
    for h, w in ((200, 328), (333, 517)):  # not multiples of 32
        x = rng.standard_normal((1, 3, h, w)).astype("float32")
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {"x": x})[0]
        assert got.shape == (1, 19, h, w) and np.abs(got - expected).max() <= 1e-4


def test_export_fixed_onnx_from_pir(pir_tar, tmp_path, fixture_inputs):
    out = tmp_path / "fixed.onnx"
    assert main(["export", str(pir_tar), "-o", str(out), "--input-shape", "1,3,512,512"]) == 0
    assert _input_dims(out) == [1, 3, 512, 512]
    x = fixture_inputs["512x1024"][:, :, :512, :512].copy()
    with torch.no_grad():
        expected = liteseg.load(pir_tar).model(torch.from_numpy(x)).numpy()
    assert np.abs(ort_session(out).run(None, {"x": x})[0] - expected).max() <= 1e-4


def test_convert_to_safetensors_keeps_the_weights(pir_tar, tmp_path, fixture_inputs, fixture_logits):
    out = tmp_path / "t.safetensors"
    assert main(["convert", str(pir_tar), "-o", str(out)]) == 0
    loaded = liteseg.load(out)
    assert loaded.meta.extra["pir_version"] == 4
    with torch.no_grad():
        logits = loaded.model(torch.from_numpy(fixture_inputs["256x512"])).numpy()
    assert np.abs(logits - fixture_logits["256x512"]).max() <= 1e-4


def test_predict_and_val_with_a_pir_package(pir_tar, tmp_path, cityscapes_dir, capsys):
    out = tmp_path / "pred"
    image = cityscapes_dir / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png"
    assert main(["predict", str(image), "--model", str(pir_tar), "-o", str(out)]) == 0
    assert len(list((out / "labels").glob("*.png"))) == 1
    report = tmp_path / "val"
    assert main(["val", "--model", str(pir_tar), "--data", f"cityscapes:{cityscapes_dir}", "-o", str(report),
                 "--num-workers", "0", "--device", "cpu"]) == 0
    assert "miou" in capsys.readouterr().out.lower()


def test_broken_package_is_one_line_on_the_cli(pir_tar, tmp_path, capsys):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(pir_tar.read_bytes()[:4096])
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
