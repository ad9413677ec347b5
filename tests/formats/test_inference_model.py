"""Paddle inference models: folders, .tgz, missing .info, PaddleSeg <= 2.6 programs, fixed shapes, damage."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import liteseg
from liteseg.errors import FormatError
from liteseg.formats import analyze_program, read_program, recover_architecture

from .paddle_variants import fixed_shape, legacy_inference, logits as _logits, make_tgz, unit_scale_reference

ATOL = 1e-4


def test_program_summary(fixture_dir):
    info = analyze_program(read_program(fixture_dir / "inference" / "model.pdmodel"))
    assert info.feed_name == "x" and info.feed_shape == [-1, 3, -1, -1]
    assert info.fetch_name == "save_infer_model/scale_0.tmp_0"
    assert info.output_op == "none" and info.version == 2006002
    assert sum(len(u.names) for u in info.uses) == 238
    arch, kwargs = recover_architecture(info)
    assert arch == "pp_liteseg_t"
    assert kwargs == {"num_classes": 19, "arm_type": "UAFM_SpAtten", "arm_out_chs": [32, 64, 128],
                      "cm_out_ch": 128, "seg_head_inter_chs": [32, 64, 64]}


def test_metadata_from_deploy_yaml(fixture_dir):
    meta = liteseg.load(fixture_dir / "inference").meta
    assert meta.mean == [0.5] * 3 and meta.std == [0.5] * 3
    assert meta.input_shape == [-1, 3, -1, -1] and meta.output_op == "none"
    assert meta.class_names[0] == "road" and len(meta.palette) == 19


def test_pdmodel_path_and_tgz(fixture_dir, tmp_path, fixture_inputs, fixture_logits):
    archive = make_tgz(fixture_dir / "inference", tmp_path / "PP_LiteSeg_T_infer.tgz", "PP_LiteSeg_T_infer")
    for source in (fixture_dir / "inference" / "model.pdmodel", archive):
        out = _logits(liteseg.load(source).model, fixture_inputs["256x512"])
        assert np.abs(out - fixture_logits["256x512"]).max() <= ATOL


@pytest.mark.parametrize("with_info", [True, False])
def test_paddleseg_25_inference_model(fixture_dir, tmp_path, fixture_inputs, with_info):
    folder = legacy_inference(fixture_dir / "inference", tmp_path / "legacy", with_info=with_info)
    info = analyze_program(read_program(folder / "model.pdmodel"))
    assert info.one_minus_alpha == 3 and not any(u.kind == "scale" for u in info.uses)
    loaded = liteseg.load(folder)
    reference = unit_scale_reference(fixture_dir)
    x = fixture_inputs["256x512"]
    assert np.abs(_logits(loaded.model, x) - _logits(reference, x)).max() == 0.0


def test_fixed_shape_export_without_info(fixture_dir, tmp_path, fixture_inputs, fixture_logits):
    folder = fixed_shape(fixture_dir / "inference", tmp_path / "fixed", shape=(1, 3, 256, 512))
    assert not (folder / "model.pdiparams.info").exists()
    loaded = liteseg.load(folder)
    assert loaded.meta.input_shape == [1, 3, 256, 512]
    assert loaded.meta.extra["fetch"] == "save_infer_model/scale_0.tmp_1"
    out = _logits(loaded.model, fixture_inputs["256x512"])
    assert np.abs(out - fixture_logits["256x512"]).max() <= ATOL


def test_truncated_pdiparams(fixture_dir, tmp_path):
    folder = tmp_path / "cut"
    shutil.copytree(fixture_dir / "inference", folder)
    data = (folder / "model.pdiparams").read_bytes()
    (folder / "model.pdiparams").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated"):
        liteseg.load(folder)
    (folder / "model.pdiparams").write_bytes(data + b"\0" * 8)
    with pytest.raises(FormatError, match="unexpected bytes"):
        liteseg.load(folder)


def test_corrupt_program(fixture_dir, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(fixture_dir / "inference", folder)
    (folder / "model.pdmodel").write_bytes(b"\xff\xfe garbage" * 10)
    with pytest.raises(FormatError, match="model.pdmodel"):
        liteseg.load(folder)


def test_json_pdmodel_without_a_pir_program_names_the_missing_part(tmp_path):
    """A JSON ``.pdmodel`` is read as PIR (Paddle 3 writes programs as JSON); one without PIR's ``base_code`` is
    refused naming the file and what it lacks."""
    folder = tmp_path / "pir"
    folder.mkdir()
    (folder / "model.pdmodel").write_bytes(b'{"program": {}}')
    (folder / "model.pdiparams").write_bytes(b"")
    with pytest.raises(FormatError, match=r"model\.pdmodel: the file has no 'base_code'; not a PIR program"):
        liteseg.load(folder)


def test_missing_params_file(fixture_dir, tmp_path):
    folder = tmp_path / "noparams"
    folder.mkdir()
    shutil.copy(fixture_dir / "inference" / "model.pdmodel", folder)
    with pytest.raises(FormatError, match=r"no \.pdiparams"):
        liteseg.load(folder)


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "broken.tgz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(FormatError, match="archive"):
        liteseg.load(bad)


@pytest.mark.parametrize("op_type,expected", [("arg_max", "argmax"), ("softmax", "softmax")])
def test_baked_in_argmax_or_softmax_is_detected(fixture_dir, tmp_path, op_type, expected):
    """PaddleSeg's --output_op argmax|softmax appends an op before the fetch; the loader records it."""
    from liteseg.formats.inference_model import write_inference_model
    from liteseg.formats.pdiparams import read_pdiparams

    program = read_program(fixture_dir / "inference" / "model.pdmodel")
    params = read_pdiparams(fixture_dir / "inference" / "model.pdiparams", program)
    block = program.blocks[0]
    fetch_index = next(i for i, op in enumerate(block.ops) if op.type == "fetch")
    fetch = block.ops[fetch_index]
    logits = fetch.inputs[0].arguments[0]
    var = block.vars.add()
    var.CopyFrom(next(v for v in block.vars if v.name == logits))
    var.name = f"{op_type}_0.tmp_0"
    op = block.ops.add(type=op_type)
    op.inputs.add(parameter="X", arguments=[logits])
    op.outputs.add(parameter="Out", arguments=[var.name])
    ops = list(block.ops)
    del block.ops[:]
    block.ops.extend(ops[:fetch_index] + [ops[-1]] + ops[fetch_index:-1])
    next(o for o in block.ops if o.type == "fetch").inputs[0].arguments[0] = var.name
    folder = write_inference_model(tmp_path / op_type, program, params)
    assert analyze_program(read_program(folder / "model.pdmodel")).output_op == expected
    loaded = liteseg.load(folder)
    assert loaded.meta.output_op == expected and loaded.meta.arch == "pp_liteseg_t"
