"""Paddle 3.0 (PIR version 1) packages keep the parameter ops and tensors of the training-only auxiliary heads."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.errors import FormatError
from liteseg.formats.pdiparams import parse_tensor_stream, write_pdiparams
from liteseg.formats.pdparams import read_pdparams
from liteseg.formats.pir import parse_pir
from liteseg.inference.preprocess import normalize

from ..conftest import _require
from .paddle_variants import logits as _logits
from .pir_variants import aux_tensors, assemble, ops_of, paddle30

ATOL = 1e-4


@pytest.fixture(scope="module")
def checkpoint(fixture_dir):
    return read_pdparams(fixture_dir / "weights.pdparams")


@pytest.fixture(scope="module")
def package30(shared_dir, tmp_path_factory, checkpoint):
    pir_dir = _require(shared_dir / "fixtures" / "pp_liteseg_t_pir")
    root = tmp_path_factory.mktemp("paddle30")
    return paddle30(assemble(pir_dir, "inference", root / "src"), root / "PP-LiteSeg-T_infer", aux_tensors(checkpoint))


def test_paddle30_package_loads_converts_and_predicts(package30, checkpoint, tmp_path, fixture_inputs,
                                                      fixture_logits, camvid_dir, capsys):
    doc = json.loads((package30 / "inference.json").read_text())
    assert doc["base_code"]["version"] == 1 and sum(op["#"] == "p" for op in ops_of(doc)) == 238 + 12
    loaded = liteseg.load(package30)
    assert loaded.meta.extra["pir_version"] == 1
    diff = np.abs(_logits(loaded.model, fixture_inputs["256x512"]) - fixture_logits["256x512"]).max()
    print(f"Paddle 3.0-style package: max abs diff {diff:.2e} vs PaddleSeg's logits")
    assert diff <= ATOL
    summary = loaded.report.summary()
    assert "12 parameters" in summary and "auxiliary heads (seg_heads.1, seg_heads.2)" in summary
    assert not loaded.report.kept_default  # the aux heads came from the file, not from their init
    state = loaded.model.state_dict()
    for key in ("seg_heads.1.conv._conv.weight", "seg_heads.2.conv_out.weight"):
        assert np.array_equal(state[key].numpy(), checkpoint[key])
    assert np.array_equal(state["seg_heads.2.conv._batch_norm.running_var"].numpy(),
                          checkpoint["seg_heads.2.conv._batch_norm._variance"])

    out = tmp_path / "t.safetensors"
    assert main(["convert", str(package30), "-o", str(out)]) == 0
    assert "auxiliary heads" in capsys.readouterr().out
    with torch.no_grad():
        converted = liteseg.load(out).model(torch.from_numpy(fixture_inputs["256x512"])).numpy()
    assert np.abs(converted - fixture_logits["256x512"]).max() <= ATOL
    image = tmp_path / "frame.png"
    Image.open(camvid_dir / "images" / "val" / "0016E5_07959.jpg").resize((120, 90)).save(image)
    labels = liteseg.Segmenter(loaded)(image).labels  # predict on the loaded package (the CLI's path)
    x = torch.from_numpy(normalize(np.asarray(Image.open(image)), loaded.meta))
    with torch.no_grad():
        assert labels.shape == (90, 120) and (labels == loaded.model(x)[0].argmax(0).numpy()).mean() > 0.999


def test_unrecognised_dangling_parameters_are_ignored_with_their_names(package30, tmp_path, checkpoint,
                                                                      fixture_inputs, fixture_logits):
    variant = paddle30(package30.parent / "src", tmp_path / "odd", {"linear_0.w_0": np.ones((4, 3), np.float32),
                                                     **aux_tensors(checkpoint)})
    loaded = liteseg.load(variant)
    summary = loaded.report.summary()
    assert "13 parameters" in summary and "ignored: " in summary and "linear_0.w_0" in summary
    assert "conv2d_47.w_0" in summary and len(loaded.report.kept_default) == 12
    assert np.abs(_logits(loaded.model, fixture_inputs["256x512"]) - fixture_logits["256x512"]).max() <= ATOL


def test_a_used_parameter_the_file_lacks_is_refused(package30, tmp_path):
    folder = tmp_path / "lacking"
    shutil.copytree(package30, folder)
    program = parse_pir((folder / "inference.json").read_bytes())
    params = parse_tensor_stream((folder / "inference.pdiparams").read_bytes(), program.stored_tensors())
    del params["conv2d_0.w_0"]  # used by the first conv
    write_pdiparams(folder / "inference.pdiparams", params)
    with pytest.raises(FormatError, match="inference.pdiparams"):
        liteseg.load(folder)
