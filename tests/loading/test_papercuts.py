"""Loading papercuts (issue 25): what the load report, name errors, create_model and the docs tell a new user."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import liteseg
from liteseg.cli.main import main
from liteseg.errors import FormatError
from liteseg.loading.zoo import default_model

REPO = Path(__file__).resolve().parents[2]


def test_convert_explains_the_auxiliary_heads_kept_at_init(fixture_dir, tmp_path, capsys):
    assert main(["convert", str(fixture_dir / "inference"), "-o", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\d+ kept at init \(seg_heads\.1, seg_heads\.2: the auxiliary training heads, which inference "
                     r"models do not contain and inference does not use\)", out), out


def test_python_name_errors_suggest_the_close_name():
    with pytest.raises(FormatError, match=r"did you mean 'pp_liteseg_t\.camvid'") as e:
        liteseg.load("pp_liteseg_t.camvd")
    assert "scale0.5" not in str(e.value)  # not all ten names
    with pytest.raises(FormatError, match="did you mean 'pp_liteseg_t.camvid'"):
        liteseg.create_model("pp_liteseg_t", weights="pp_liteseg_t.camvd")
    with pytest.raises(ValueError, match=r"did you mean 'pp_liteseg_t'"):
        liteseg.create_model("pp_liteseg_tt")
    with pytest.raises(ValueError, match=r"create_model\('pp_liteseg_t.camvid', pretrained=True\)"):
        liteseg.create_model("pp_liteseg_t.camvid")


def test_create_model_with_reinit_head_reports_what_it_did(fixture_dir, caplog):
    weights = fixture_dir / "weights.pdparams"
    with caplog.at_level(logging.INFO, logger="liteseg"):
        model = liteseg.create_model("pp_liteseg_t", weights=weights, num_classes=5, reinit_head=True)
    report = model.load_report
    assert sorted(report.reinitialized) == [f"seg_heads.{i}.conv_out.weight" for i in range(3)]
    assert report.loaded > 200
    assert f"{weights}: {report.loaded} tensors loaded, 3 re-initialised (seg_heads.0.conv_out.weight" in caplog.text


def test_serving_docs_give_the_default_models_class_count():
    counts = re.findall(r"the default PP-LiteSeg-T \([^)]*?(\d+) classes\)", (REPO / "docs/serving.md").read_text())
    assert counts and {int(c) for c in counts} == {liteseg.load(default_model()).meta.num_classes}
