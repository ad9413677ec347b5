"""One regression test per bug the fuzzers found: each input used to end in a non-liteseg exception, a hang or a
memory blow-up; now it ends in one clear LitesegError (or loads)."""
from __future__ import annotations

import gzip
import io
import json
import lzma
import pickle
import resource
import struct
import tarfile
import zlib

import numpy as np
import pytest

from liteseg.errors import ArchitectureError, FormatError, LitesegError

from ..conftest import require_module

# --- .pdmodel ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program_bytes(fixture_dir) -> bytes:
    return (fixture_dir / "inference" / "model.pdmodel").read_bytes()


def _load_program(data: bytes):
    from liteseg.formats.program import analyze_program, parse_program, recover_architecture

    program = parse_program(data, "m.pdmodel")
    return recover_architecture(analyze_program(program, "m.pdmodel"), "m.pdmodel")


def _edit(data: bytes, edit) -> bytes:
    from liteseg.formats.paddle_proto import ProgramDesc

    program = ProgramDesc()
    program.ParseFromString(data)
    edit(program.blocks[0])
    return program.SerializeToString()


def _first(block, op_type):
    return next(op for op in block.ops if op.type == op_type)


def _clear_slot(op_type, slot, outputs=False):
    def edit(block):
        op = _first(block, op_type)
        for var in op.outputs if outputs else op.inputs:
            if var.parameter == slot:
                del var.arguments[:]
    return edit


def _drop_var(name_of):
    def edit(block):
        name = name_of(block)
        keep = [v for v in block.vars if v.name != name]
        del block.vars[:]
        for v in keep:
            block.vars.add().CopyFrom(v)
    return edit


def _filter_name(block):
    return [a for v in _first(block, "conv2d").inputs if v.parameter == "Filter" for a in v.arguments][0]


def _fetch_name(block):
    return [a for v in _first(block, "fetch").inputs if v.parameter == "X" for a in v.arguments][0]


def _flat_filter(block):
    var = next(v for v in block.vars if v.name == _filter_name(block))
    del var.type.lod_tensor.tensor.dims[:]
    var.type.lod_tensor.tensor.dims.extend([32, 27])


def _self_loop(block):  # the fetched scale op reads its own output: walking producers used to loop forever
    op = [o for o in block.ops if o.type == "scale"][-1]
    out = [a for v in op.outputs if v.parameter == "Out" for a in v.arguments][0]
    for v in op.inputs:
        if v.parameter == "X":
            del v.arguments[:]
            v.arguments.append(out)


@pytest.mark.parametrize("edit, error", [
    (_clear_slot("feed", "Out", outputs=True), "feed op has no 'Out' output"),      # was IndexError
    (_clear_slot("fetch", "X"), "fetch op has no 'X' input"),                       # was IndexError
    (_clear_slot("batch_norm", "Scale"), "batch_norm op has no 'Scale' input"),     # was IndexError
    (_clear_slot("elementwise_add", "Y"), "elementwise_add op has no 'Y' input"),   # was IndexError
    (_clear_slot("scale", "X"), "scale op has no 'X' input"),                       # was IndexError
    (_drop_var(_fetch_name), "is not declared"),                                     # was KeyError
    (_drop_var(_filter_name), "convolution filter"),                                 # was KeyError
    (_flat_filter, "convolution filter"),                                            # was IndexError
], ids=["feed", "fetch", "batch_norm", "elementwise_add", "scale", "fetch-var", "filter-var", "filter-dims"])
def test_mutated_program_gives_a_format_error(program_bytes, edit, error):
    with pytest.raises((FormatError, ArchitectureError), match=error):
        _load_program(_edit(program_bytes, edit))


def test_adaptive_pool_without_ksize(program_bytes):
    def edit(block):
        op = next(o for o in block.ops if o.type == "pool2d" and any(a.name == "adaptive" and a.b for a in o.attrs))
        keep = [a for a in op.attrs if a.name != "ksize"]
        del op.attrs[:]
        for a in keep:
            op.attrs.add().CopyFrom(a)
    with pytest.raises(FormatError, match="adaptive pool2d op has no ksize"):  # was TypeError
        _load_program(_edit(program_bytes, edit))


def test_producer_cycle_ends(program_bytes):
    _load_program(_edit(program_bytes, _self_loop))  # used to hang; the output op is simply not recognised


def test_names_that_are_not_utf8(program_bytes):
    from liteseg.formats.paddle_proto import ProgramDesc

    program = ProgramDesc()
    program.ParseFromString(program_bytes)
    name = program.blocks[0].vars[0].name.encode()
    data = program.SerializeToString().replace(name, b"\xff" + name[1:], 1)
    with pytest.raises(FormatError, match="not UTF-8"):  # was AttributeError in persistable_vars
        _load_program(data)


# --- .pdparams ------------------------------------------------------------------------------------------------

def _pdparams(tmp_path, data: bytes):
    from liteseg.formats.pdparams import infer_config, normalize_paddle_keys, read_pdparams

    path = tmp_path / "w.pdparams"
    path.write_bytes(data)
    return infer_config(normalize_paddle_keys(read_pdparams(path), str(path)), str(path))


def test_pickle_memo_index_does_not_allocate(tmp_path):
    """LONG_BINPUT 2**26 made the C unpickler allocate a 2**26-slot memo (0.5-1 GB) for a 30-byte file."""
    data = b"\x80\x02}q\x00X\x01\x00\x00\x00ar\x00\x00\x00\x04K\x01s."
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LitesegError):
        _pdparams(tmp_path, data)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100


@pytest.mark.parametrize("data", [
    b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff.",                 # FRAME length overflow: was OverflowError
    b"\x80\x02X\x01\x00\x00\x00b",                                   # truncated: was struct.error (pure unpickler)
    b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x03\x00\x00\x00zzz\x86R.",  # unknown codec: was LookupError
], ids=["frame-overflow", "truncated", "unknown-codec"])
def test_broken_pickles_give_a_format_error(tmp_path, data):
    with pytest.raises(FormatError, match="not a readable pickle"):
        _pdparams(tmp_path, data)


@pytest.fixture(scope="module")
def fixture_state(fixture_dir):
    from liteseg.formats.pdparams import read_pdparams

    return dict(read_pdparams(fixture_dir / "weights.pdparams"))


@pytest.mark.parametrize("change, error", [
    (lambda s: s.pop("ppseg_head.arm_list.0.conv_x._conv.weight"), "missing tensor"),       # was KeyError
    (lambda s: s.__setitem__("ppseg_head.arm_list.0.conv_xy_atten.0._conv.weight", np.zeros(3, np.float32)),
     "has shape \\[3\\]"),                                                                     # was ValueError
    (lambda s: s.__setitem__("seg_heads.0.conv_out.weight", np.array(1.0, np.float32)), "has shape \\[\\]"),
    (lambda s: [s.pop(k) for k in list(s) if k.startswith("ppseg_head.arm_list")], "no ppseg_head.arm_list"),
], ids=["missing-conv_x", "1d-attention", "0d-classifier", "no-arms"])
def test_odd_checkpoints_give_an_architecture_error(tmp_path, fixture_state, change, error):
    state = dict(fixture_state)
    change(state)
    with pytest.raises(ArchitectureError, match=error):
        _pdparams(tmp_path, pickle.dumps(state, protocol=2))


# --- deploy.yaml ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    (b"- a\n- b\n", "expected a mapping"),                                         # was AttributeError
    (b"Deploy: [1, 2]\n", "'Deploy' must be a mapping"),                           # was AttributeError
    (b"Deploy: {model: [a]}\n", "Deploy.model must be a string"),                  # was TypeError (unhashable)
    (b"Deploy: {transforms: 3}\n", "transforms must be a list"),                   # was TypeError
    (b"Deploy: {input_shape: [a, 3]}\n", "input_shape must be a list of integers"),  # was ValueError in load
    (b"Deploy: {transforms: [{type: Normalize, mean: [a, b, c]}]}\n", "Normalize.mean"),  # was ValueError
    (b"Deploy: {transforms: [{type: Normalize, std: [0, 1, 1]}]}\n", "std must be positive"),  # division by 0
    (b"Deploy: !!python/object/apply:os.system [echo]\n", "invalid YAML"),
])
def test_bad_deploy_configs_give_a_format_error(text, error):
    from liteseg.formats.deploy import parse_deploy
    from liteseg.formats.inference_model import deploy_normalization

    with pytest.raises(FormatError, match=error):
        deploy_normalization(parse_deploy(text, "deploy.yaml"), "deploy.yaml")


# --- .tgz / .tar packages -------------------------------------------------------------------------------------

def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _read(tmp_path, data: bytes, name: str = "m.tgz"):
    from liteseg.formats.inference_model import read_inference_model

    path = tmp_path / name
    path.write_bytes(data)
    return read_inference_model(path)


def test_corrupt_compressed_streams_give_a_format_error(tmp_path):
    xz = lzma.compress(_tar({"model.pdmodel": b"x" * 1000}, mode="w"))
    with pytest.raises(FormatError, match="cannot read the archive"):  # was LZMAError
        _read(tmp_path, xz[:40] + bytes(60) + xz[100:])
    gz = bytearray(_tar({"model.pdmodel": bytes(range(256)) * 40}))
    gz[30:60] = bytes(30)
    with pytest.raises(FormatError, match="cannot read the archive"):  # was zlib.error
        _read(tmp_path, bytes(gz))


def test_gzip_bomb_stops_at_the_unpack_limit(tmp_path, monkeypatch):
    from liteseg.formats import inference_model

    monkeypatch.setattr(inference_model, "MAX_ARCHIVE_BYTES", 1 << 20)
    bomb = gzip.compress(_tar({"a/model.pdmodel": bytes(4 << 20)}, mode="w"))
    assert len(bomb) < 10_000
    with pytest.raises(FormatError, match="unpacks to more than 1 MiB"):
        _read(tmp_path, bomb)


def test_member_claiming_a_huge_size(tmp_path):
    raw = bytearray(_tar({"model.pdmodel": b"abc"}, mode="w"))
    raw[124:136] = b"77777777777\0"  # 8 GiB in the size field
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    with pytest.raises(FormatError):  # was MemoryError (GNU long names) or a multi-GB read
        _read(tmp_path, bytes(raw), "m.tar")


@pytest.mark.parametrize("name", ["../model.pdmodel", "/abs/model.pdmodel"])
def test_hostile_member_names_are_read_in_memory_only(tmp_path, name):
    with pytest.raises(FormatError, match="not a Paddle program|no .pdiparams"):
        _read(tmp_path, _tar({name: b"not a program"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tgz"]  # nothing was extracted anywhere


# --- .safetensors metadata ------------------------------------------------------------------------------------

def _safetensors(tmp_path, liteseg_meta: str):
    from liteseg.formats.native import load_native

    header = json.dumps({"__metadata__": {"liteseg": liteseg_meta},
                         "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    return load_native(path)


@pytest.mark.parametrize("meta, error", [
    ("{not json", "not valid JSON"),                                    # was JSONDecodeError
    ('"a string"', "damaged"),                                          # was AttributeError
    ('{"format_version": {}}', "damaged"),                              # was TypeError
    ('{"format_version": 1, "config": [1]}', "damaged"),                # would fail later in dict(config)
])
def test_bad_safetensors_metadata_gives_a_format_error(tmp_path, meta, error):
    with pytest.raises(FormatError, match=error):
        _safetensors(tmp_path, meta)


# --- ONNX metadata --------------------------------------------------------------------------------------------

def _onnx(tmp_path, metadata: str | None, with_input: bool = True):
    require_module("onnx")
    from onnx import TensorProto, helper

    from liteseg.inference.onnx_graph import open_graph

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])] if with_input else []
    graph = helper.make_graph([], "g", inputs, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])])
    model = helper.make_model(graph)
    if metadata is not None:
        model.metadata_props.add(key="liteseg", value=metadata)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return open_graph(path)


def test_onnx_graph_without_inputs(tmp_path):
    with pytest.raises(FormatError, match="no inputs or no outputs"):  # was IndexError
        _onnx(tmp_path, None, with_input=False)


@pytest.mark.parametrize("metadata", [
    '{"meta": "x", "export": {}}',                                                  # was AttributeError
    '[1]',                                                                           # was TypeError
    '{"meta": {"arch": "t", "num_classes": "11"}, "export": {}}',                    # wrong types, was TypeError
    '{"meta": {"arch": "t", "num_classes": 1000000000000}, "export": {}}',           # palette for 1e12 classes
    '{"meta": {"arch": "t", "num_classes": 2, "mean": [0.5]}, "export": {}}',        # failed later, in predict
])
def test_damaged_liteseg_onnx_metadata(tmp_path, metadata):
    with pytest.raises(FormatError, match="metadata in this ONNX file is damaged"):
        _onnx(tmp_path, metadata)


# --- images (predict, datasets) -------------------------------------------------------------------------------

def _png_claiming(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    data = buf.getvalue()
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def test_decompression_bomb_image_gives_an_input_error(tmp_path):
    from liteseg.data.io import read_image as read_dataset_image
    from liteseg.images import read_image

    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(LitesegError, match="decompression bomb"):  # was DecompressionBombError
        read_image(path)
    with pytest.raises(LitesegError, match="decompression bomb"):
        read_dataset_image(path)


# A 1 x 16,777,216 4-bit grey PNG whose IDAT handling made Pillow read() a claimed multi-GB length from the file: a
# MemoryError escaped read_image wherever the address space is limited (found by the image_file harness, 86 bytes).
_TALL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d494844520000000101000000040000000023a9b1b2ff00001d49444154789c636464200d3091a87e54"
    "c3a886510da31a46350c490d00d03f0041b5c757570000000049454e44ae426082")


def test_png_claiming_huge_chunk_reads_under_an_address_space_limit(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "tall.png"
    path.write_bytes(_TALL_PNG)
    script = (
        "import resource, sys\n"
        "from liteseg.images import read_image\n"
        "from liteseg.data.io import read_label\n"
        "vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:')][0]\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), vm + (2 << 30)))\n"
        "rgb, notes = read_image(sys.argv[1])\n"
        "print(rgb.shape, read_label(sys.argv[1]).shape)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "(16777216, 1, 3) (16777216, 1)"
