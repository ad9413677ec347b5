"""Paddle 3 PIR inference packages (``inference.json``): every package form, variants, and hostile files."""
from __future__ import annotations

import json
import random
import shutil
import struct

import numpy as np
import pytest

import liteseg
from liteseg.errors import FormatError, LitesegError
from liteseg.formats.pir import SUPPORTED_VERSIONS, parse_pir
from liteseg.formats.pir_info import analyze_pir
from liteseg.formats.program import recover_architecture

from ..conftest import _require
from .paddle_variants import logits as _logits, unit_scale_reference
from .pir_variants import assemble, one_minus_alpha, ops_of, pack, renumbered

ATOL = 1e-4


@pytest.fixture(scope="module")
def pir_dir(shared_dir):
    return _require(shared_dir / "fixtures" / "pp_liteseg_t_pir")


@pytest.fixture(scope="module")
def pir_outputs(pir_dir):
    with np.load(pir_dir / "outputs.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def package(pir_dir, tmp_path):
    return assemble(pir_dir, "inference", tmp_path / "PP-LiteSeg-T_infer")


def test_program_summary(pir_dir):
    program = parse_pir((pir_dir / "inference" / "inference.json").read_bytes())
    assert program.version == 4 and len(program.ops) == 499 and len(program.parameters) == 238
    info = analyze_pir(program)
    assert info.program_format == "PIR" and info.feed_name == "x" and info.feed_shape == [-1, 3, -1, -1]
    assert info.output_op == "none" and info.output_dtype == "float32" and info.adaptive_bins == [1, 2, 4]
    assert [u.kind for u in info.uses].count("conv") == 47 and [u.kind for u in info.uses].count("scale") == 3
    assert sum(len(u.names) for u in info.uses) == 238
    bn = next(u for u in info.uses if u.kind == "bn")
    assert bn.names == ["batch_norm2d_0.w_0", "batch_norm2d_0.b_0", "batch_norm2d_0.w_1", "batch_norm2d_0.w_2"]
    assert recover_architecture(info) == ("pp_liteseg_t", {
        "num_classes": 19, "arm_type": "UAFM_SpAtten", "arm_out_chs": [32, 64, 128], "cm_out_ch": 128,
        "seg_head_inter_chs": [32, 64, 64]})
    stored = list(program.stored_tensors())
    assert stored == sorted(stored, key=str.encode) and stored.index("batch_norm2d_10.b_0") < stored.index(
        "batch_norm2d_2.b_0")


@pytest.mark.parametrize("form", ["folder", "json", ".tar", ".tgz", ".tar.gz"])
def test_dynamic_package_in_every_form(package, tmp_path, form, fixture_inputs, fixture_logits):
    source = {"folder": package, "json": package / "inference.json"}.get(form)
    if source is None:
        source = pack(package, tmp_path / f"PP-LiteSeg-T_infer{form}", "PP-LiteSeg-T_infer")
    loaded = liteseg.load(source)
    meta = loaded.meta
    assert meta.arch == "pp_liteseg_t" and meta.num_classes == 19 and meta.output_op == "none"
    assert meta.input_shape == [-1, 3, -1, -1] and meta.mean == [0.5] * 3 and meta.std == [0.5] * 3
    assert meta.extra["program_format"] == "PIR" and meta.extra["pir_version"] == 4
    assert meta.extra["model_name"] == "PP-LiteSeg-T" and meta.extra["program_file"] == "inference.json"
    diff = np.abs(_logits(loaded.model, fixture_inputs["256x512"]) - fixture_logits["256x512"]).max()
    assert diff <= ATOL


def test_fixed_package(pir_dir, tmp_path, pir_outputs):
    folder = assemble(pir_dir, "inference_fixed512", tmp_path / "fixed")
    loaded = liteseg.load(folder)
    assert loaded.meta.input_shape == [1, 3, 512, 512] and loaded.meta.fixed_hw == (512, 512)
    out = _logits(loaded.model, pir_outputs["x_512x512"])[:, :, ::4, ::4]
    assert np.abs(out - pir_outputs["logits_512x512_stride4"]).max() <= ATOL


def test_argmax_package(pir_dir, tmp_path, pir_outputs, fixture_inputs, fixture_logits):
    folder = assemble(pir_dir, "inference_argmax", tmp_path / "argmax")
    loaded = liteseg.load(folder)
    assert loaded.meta.output_op == "argmax"
    labels = _logits(loaded.model, fixture_inputs["256x512"]).argmax(1)
    top2 = np.sort(fixture_logits["256x512"], axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) >= 2e-4
    expected = pir_outputs["predictor_labels"]
    assert (labels[clear] == expected[clear]).all() and clear.mean() > 0.99


def _with_header(folder, version):
    doc = json.loads((folder / "inference.json").read_text())
    doc["base_code"]["version"] = version
    (folder / "inference.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("version", [2, 3])
def test_versions_2_and_3_read_like_version_4(package, version):
    """Versions 2 and 3 (Paddle 3.1/3.2) differ from 4, per Paddle's patch/N.yaml, only in attribute widths liteseg
    reads either way: the same program summary."""
    data = (package / "inference.json").read_bytes()
    expected = analyze_pir(parse_pir(data))
    _with_header(package, version)
    info = analyze_pir(parse_pir((package / "inference.json").read_bytes()))
    assert info.version == version and info.uses == expected.uses and info.feed_shape == expected.feed_shape


def test_version_1_reads_like_version_4(package, fixture_inputs, fixture_logits):
    """Paddle 3.0 writes version 1 with the same op and attribute spellings for this model."""
    assert set(SUPPORTED_VERSIONS) == {1, 2, 3, 4}
    _with_header(package, 1)
    loaded = liteseg.load(package)
    assert loaded.meta.extra["pir_version"] == 1
    assert np.abs(_logits(loaded.model, fixture_inputs["256x512"]) - fixture_logits["256x512"]).max() <= ATOL


@pytest.mark.parametrize("version", [0, 5, 99])
def test_other_versions_are_refused(package, version):
    _with_header(package, version)
    with pytest.raises(FormatError, match=f"PIR version {version} is not supported.*1 \\(Paddle 3.0\\), 2"):
        liteseg.load(package)


def test_mapping_follows_the_program_not_the_name_counters(package, tmp_path, fixture_inputs, fixture_logits):
    """conv2d_29 -> conv2d_99 and conv2d_30 -> conv2d_100 reorder the .pdiparams; the weights still land right."""
    variant = renumbered(package, tmp_path / "renumbered", offset=70)
    program = parse_pir((variant / "inference.json").read_bytes())
    names = list(program.stored_tensors())
    assert "conv2d_116.w_0" in names and names.index("conv2d_100.w_0") < names.index("conv2d_99.b_0")
    loaded = liteseg.load(variant)
    assert np.abs(_logits(loaded.model, fixture_inputs["256x512"]) - fixture_logits["256x512"]).max() <= ATOL


def test_paddleseg_25_model_reexported_on_paddle3(package, tmp_path, fixture_dir, fixture_inputs):
    variant = one_minus_alpha(package, tmp_path / "one_minus")
    info = analyze_pir(parse_pir((variant / "inference.json").read_bytes()))
    assert info.one_minus_alpha == 3 and not any(u.kind == "scale" for u in info.uses)
    loaded = liteseg.load(variant)
    assert {f"ppseg_head.arm_list.{i}._scale" for i in range(3)} <= set(loaded.report.kept_default)
    reference = unit_scale_reference(fixture_dir)
    x = fixture_inputs["256x512"]
    assert np.abs(_logits(loaded.model, x) - _logits(reference, x)).max() == 0.0


# ---- hostile and broken packages: one FormatError each -------------------------------------------------------

def _edit(doc_edit):
    def apply(folder):
        doc = json.loads((folder / "inference.json").read_text())
        doc_edit(doc, ops_of(doc))
        (folder / "inference.json").write_text(json.dumps(doc))
    return apply


def _raw(fn):
    def apply(folder):
        path = folder / "inference.json"
        path.write_bytes(fn(path.read_bytes()))
    return apply


def _first(ops, name):
    return next(op for op in ops if op["#"] == name)


def _attr(op, name):
    return next(a for a in op["A"] if a["N"] == name)["AT"]


def _set_param_dims(doc, ops):
    ops[0]["O"]["TT"]["D"][1] = [19, 32, 1, 2**31 - 1]


def _dims_too_big(doc, ops):
    ops[0]["O"]["TT"]["D"][1] = [19, 32, 1, 2**40]


def _drop_first_param(doc, ops):
    del ops[0]


def _dangling(doc, ops):
    _first(ops, "1.relu")["I"][0]["%"] = 987654


def _duplicate_id(doc, ops):
    _first(ops, "1.relu")["O"][0]["%"] = 1


def _stride_2_same(doc, ops):
    conv = _first(ops, "1.conv2d")
    _attr(conv, "padding_algorithm")["D"] = "SAME"


def _stride_changed(doc, ops):
    conv = next(op for op in ops if op["#"] == "1.conv2d" and _attr(op, "strides")["D"][0]["D"] == 2)
    for s in _attr(conv, "strides")["D"]:
        s["D"] = 1


def _align_corners(doc, ops):
    _attr(_first(ops, "1.bilinear_interp"), "align_corners")["D"] = True


def _bias_shape(doc, ops):
    reshape = _first(ops, "1.reshape")
    shape_id = reshape["I"][1]["%"]
    src = next(op for op in ops if op.get("O") and isinstance(op["O"], list) and op["O"][0]["%"] == shape_id)
    _attr(src, "value")["D"] = [{"#": "0.a_i64", "D": -1}]


CASES = {
    "truncated json": (_raw(lambda b: b[: len(b) // 2]), "not valid JSON"),
    "not json": (_raw(lambda b: b"{this is not json" + b[100:]), "not valid JSON"),
    "not utf-8": (_raw(lambda b: b"{" + b"\xff\xfe" * 10), "not UTF-8"),
    "deep nesting": (_raw(lambda b: b'{"base_code": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"), "nests too deep"),
    "NaN constant": (_raw(lambda b: b.replace(b'"D":1.0', b'"D":NaN', 1)), "not valid JSON"),
    "wrong magic": (_edit(lambda d, o: d["base_code"].update(magic="pdmodel")), "magic"),
    "version as text": (_edit(lambda d, o: d["base_code"].update(version="4")), "version is a str"),
    "ops not a list": (_edit(lambda d, o: d["program"]["regions"][0]["blocks"][0].update(ops={})), "ops is a dict"),
    "two blocks": (_edit(lambda d, o: d["program"]["regions"][0]["blocks"].append({})), "2 blocks"),
    "dims as text": (_edit(lambda d, o: o[0]["O"]["TT"]["D"].__setitem__(1, "19,32,1,1")), "is a str"),
    "operand id as text": (_edit(lambda d, o: _first(o, "1.relu")["I"][0].update({"%": "5"})), "is a str"),
    "groups as text": (_edit(lambda d, o: _attr(_first(o, "1.conv2d"), "groups").update(D="1")), "is a str"),
    "groups as bool": (_edit(lambda d, o: _attr(_first(o, "1.conv2d"), "groups").update(D=True)), "is a boolean"),
    "param attrs short": (_edit(lambda d, o: o[0].update(A=[0, 1])), "expected 4"),
    "param name duplicate": (_edit(lambda d, o: o[1]["A"].__setitem__(3, o[0]["A"][3])), "duplicate name"),
    "dangling value id": (_edit(_dangling), "dangling value id"),
    "duplicate value id": (_edit(_duplicate_id), "defines value %1 again"),
    "parameter op removed": (_edit(_drop_first_param), "dangling value id"),
    "huge dims": (_edit(_set_param_dims), "shape .* in the params file"),
    "dims beyond int32": (_edit(_dims_too_big), "outside"),
    "unknown op": (_edit(lambda d, o: _first(o, "1.relu").update({"#": "1.gelu"})),
                   r"pd_op.gelu\) is not an op liteseg knows \(PIR version 4\)"),
    "unknown dialect": (_edit(lambda d, o: _first(o, "1.relu").update({"#": "7.relu"})), "unknown name '7.relu'"),
    "unknown attr type": (_edit(lambda d, o: _attr(_first(o, "1.conv2d"), "groups").update({"#": "0.a_weird"})),
                          "unknown attribute type '0.a_weird'"),
    "unknown dtype": (_edit(lambda d, o: o[0]["O"]["TT"]["D"][0].update({"#": "0.t_c128"})), "element type"),
    "same padding at stride 2": (_edit(_stride_2_same), "SAME"),
    "stride changed": (_edit(_stride_changed), r"stride \(1, 1\) in the program vs \(2, 2\)"),
    "align_corners": (_edit(_align_corners), "align_corners=True"),
    "bias reshape": (_edit(_bias_shape), r"not \[1, -1, 1, 1\]"),
    "no fetch": (_edit(lambda d, o: o.remove(_first(o, "1.fetch"))), "0 fetch ops"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_program_is_one_clear_error(package, case):
    damage, message = CASES[case]
    damage(package)
    with pytest.raises(FormatError, match=message):
        liteseg.load(package)


def _flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    return data[:offset] + bytes([data[offset] ^ (1 << bit)]) + data[offset + 1:]


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0" * 8, "unexpected bytes"),
    (lambda b: _flip(b, 0), "bad record header"),
    (lambda b: _flip(b, 20 + 2, 1), "in the params file but|corrupt tensor header"),  # TensorDesc dtype / dims
    (lambda b: _flip(b, 16, 6), "ends inside|corrupt tensor header"),  # TensorDesc length
    (lambda b: b"", "truncated"),
])
def test_broken_pdiparams(package, damage, message):
    path = package / "inference.pdiparams"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(FormatError, match=message):
        liteseg.load(package)


def test_pdiparams_dtype_must_match_the_program(package):
    """A record whose TensorDesc says float64 where the program has a float32 parameter."""
    path = package / "inference.pdiparams"
    data = path.read_bytes()
    assert struct.unpack("<i", data[16:20])[0] > 2 and data[20:22] == b"\x08\x05"  # TensorDesc: data_type FP32
    path.write_bytes(data[:21] + b"\x06" + data[22:])
    with pytest.raises(FormatError, match="is float64 in the params file but float32 in the program"):
        liteseg.load(package)


def test_missing_or_extra_files(package, tmp_path):
    (package / "inference.pdiparams").unlink()
    with pytest.raises(FormatError, match=r"no \.pdiparams"):
        liteseg.load(package)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no program files"):
        liteseg.load(empty)
    (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(FormatError, match="archive"):
        liteseg.load(tmp_path / "x.tar")


def test_deploy_config_quirks(package, tmp_path):
    """``Deploy.model: inference.pdmodel`` names a file that does not exist: the .json namesake is used; the
    config may also be called deploy.yaml. A malformed config is a clear error."""
    shutil.move(package / "inference.yml", package / "deploy.yaml")
    assert liteseg.load(package).meta.extra["program_file"] == "inference.json"
    (package / "deploy.yaml").write_text("- just\n- a list\n")
    with pytest.raises(FormatError, match="Deploy"):
        liteseg.load(package)
    (package / "deploy.yaml").write_text("Deploy:\n  transforms:\n  - type: Normalize\n    mean: [a, b]\n")
    with pytest.raises(FormatError, match="Normalize"):
        liteseg.load(package)


def test_random_byte_damage_never_escapes_as_another_error(pir_dir):
    """Seeded byte flips / cuts of inference.json: each either parses or raises FormatError, nothing else."""
    data = (pir_dir / "inference" / "inference.json").read_bytes()
    rng = random.Random(0)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(damaged))
            damaged[pos] = rng.choice(b'{}[]",:0123456789-.aeE%#DIOAN \x00\xff')
        if rng.random() < 0.2:
            damaged = damaged[: rng.randrange(len(damaged))]
        try:
            analyze_pir(parse_pir(bytes(damaged), "fuzz"), "fuzz")
            outcomes["ok"] += 1
        except LitesegError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0
