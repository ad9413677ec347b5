"""``liteseg convert`` and ``liteseg info`` through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

import liteseg
from liteseg.cli.main import main


def test_convert_to_safetensors_then_load(fixture_dir, tmp_path, fixture_inputs, fixture_logits):
    out = tmp_path / "t.safetensors"
    assert main(["convert", str(fixture_dir / "inference"), "-o", str(out)]) == 0
    model = liteseg.load(out).model
    with torch.no_grad():
        logits = model(torch.from_numpy(fixture_inputs["256x512"])).numpy()
    assert np.abs(logits - fixture_logits["256x512"]).max() <= 1e-4


def test_convert_refuses_to_overwrite(fixture_dir, tmp_path, capsys):
    out = tmp_path / "t.safetensors"
    out.write_bytes(b"keep me")
    assert main(["convert", str(fixture_dir / "weights.pdparams"), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["convert", str(fixture_dir / "weights.pdparams"), "-o", str(out), "--force", "--half"]) == 0
    assert liteseg.load(out).meta.arch == "pp_liteseg_t"


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing.pdparams"), "-o", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such file" in err and "Traceback" not in err
    assert main(["convert", str(tmp_path / "missing.pdparams"), "-o", str(tmp_path / "x.xyz")]) == 2
    assert "unknown output format" in capsys.readouterr().err


def test_info_json_and_listing(fixture_dir, capsys):
    assert main(["info", str(fixture_dir / "inference"), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["arch"] == "pp_liteseg_t" and meta["num_classes"] == 19
    assert main(["info"]) == 0
    listing = capsys.readouterr().out
    assert "pp_liteseg_b" in listing and "pp_liteseg_b.cityscapes_1024x512_scale1.0" in listing and "camvid" in listing  # weights too


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "liteseg", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "convert" in result.stdout
