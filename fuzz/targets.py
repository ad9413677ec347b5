"""One harness per parser of untrusted bytes: the target, its seeds and structure-aware mutators.

A target gets raw bytes and runs the same code a user's file or a client's upload goes through. It must return
or raise a :class:`liteseg.errors.LitesegError`; anything else is a bug (see ``fuzz.runner``).
"""
from __future__ import annotations

import functools
import io
import json
import os
import pickle
import random
import struct
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from . import seeds as S
from .mutate import Mutator, json_mutator, mutate_bytes, mutate_tree, random_value

_TMP = Path(tempfile.mkdtemp(prefix="liteseg-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))


def _as_file(data: bytes, name: str) -> Path:
    path = _TMP / name
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Harness:
    """``target(data)`` parses; ``seeds()`` builds the corpus; ``mutators`` know the format's structure."""

    name: str
    target: Callable[[bytes], Any]
    seeds: Callable[[], list[bytes]]
    mutators: Sequence[Mutator] = ()
    rss_cap_mb: int = 512  # peak RSS growth allowed over the worker's baseline
    max_len: int = 1 << 20


# --- .pdparams: restricted unpickler, key normalisation, architecture recovery --------------------------------

def _pdparams(data: bytes) -> None:
    from liteseg.formats.pdparams import infer_config, normalize_paddle_keys, read_pdparams

    path = _as_file(data, "weights.pdparams")
    infer_config(normalize_paddle_keys(read_pdparams(path), str(path)), str(path))


@functools.lru_cache(maxsize=32)  # the pool's favourites come back often; callers copy before mutating
def _safe_loads(data: bytes) -> Any:
    from liteseg.errors import LitesegError
    from liteseg.formats.safe_pickle import loads_pickle

    try:
        return loads_pickle(data)
    except LitesegError:
        return None


def _random_array(rng: random.Random) -> Any:
    dtype = rng.choice(["float32", "float16", "float64", "int64", "uint8", "bool", "complex64", "<U3"])
    shape = rng.choice([(), (0,), (3,), (2, 0, 3), (1,) * 33 if rng.random() < 0.1 else (4, 3, 3, 3)])
    return np.zeros(shape, dtype=dtype)


def _pdparams_tree(data: bytes, rng: random.Random) -> bytes:
    tree = _safe_loads(data)
    if not isinstance(tree, dict) or not tree:
        return data
    tree = dict(tree)
    key = rng.choice(list(tree))
    r = rng.random()
    if r < 0.3:
        tree[key] = _random_array(rng) if rng.random() < 0.6 else random_value(rng)
    elif r < 0.45:
        tree[key] = (key, tree[key]) if rng.random() < 0.5 else (tree[key], key)
    elif r < 0.6:
        tree[rng.choice([0, None, ("a",), "backbone.x8.0.1.conv", "backbone.x16.3.conv_list.0.conv.weight",
                         "UnpackBigParamInfor@@", "model.", "seg_heads.0.conv_out.weight"])] = tree.pop(key)
    elif r < 0.75:
        del tree[key]
    elif r < 0.85:
        tree = [tree] if rng.random() < 0.5 else {"state": tree}
    else:
        value = tree[key]
        if isinstance(value, np.ndarray) and value.ndim:
            tree[key] = value.reshape(-1)[: rng.randint(0, value.size)] if value.size else value
    return pickle.dumps(tree, protocol=rng.choice([2, 4, 5]))


def _deep_nesting(data: bytes, rng: random.Random) -> bytes:
    """A pickle whose containers nest far deeper than ``pickle.dumps`` can write (it recurses), used as a dict key
    or as a value: a 200,000-deep tuple key crashed the unpickler (and torch's) with SIGSEGV."""
    depth = rng.choice([99, 100, 101, 1000, 200_000])
    inner = rng.choice([b")" + b"\x85" * depth, b"]" + b"\x85" * depth, b"(" * depth + b"t" * depth,
                        b"}" + b"(}" * depth + b"u" * depth])
    return b"\x80\x02}" + (inner + b"K\x01s." if rng.random() < 0.5 else b"X\x01\x00\x00\x00k" + inner + b"s.")


# --- .pdmodel: protobuf ProgramDesc, program analysis, architecture recovery ----------------------------------

def _pdmodel(data: bytes) -> None:
    from liteseg.formats.program import analyze_program, parse_program, recover_architecture

    program = parse_program(data, "model.pdmodel")
    recover_architecture(analyze_program(program, "model.pdmodel"), "model.pdmodel")


_OP_TYPES = ["feed", "fetch", "conv2d", "depthwise_conv2d", "batch_norm", "elementwise_add", "elementwise_sub",
             "scale", "sigmoid", "pool2d", "arg_max", "argmax", "softmax", "cast", "reshape2", "unsqueeze2", "relu"]
_SLOTS = ["X", "Y", "Out", "Filter", "Input", "Output", "Scale", "Bias", "Mean", "Variance"]


def _program_tree(data: bytes, rng: random.Random) -> bytes:
    from liteseg.formats.paddle_proto import ProgramDesc

    program = ProgramDesc()
    try:
        program.ParseFromString(data)
    except Exception:
        return data
    if not program.blocks:
        return data
    block = program.blocks[0]
    for _ in range(rng.choice([1, 1, 2, 4])):
        r = rng.random()
        if r < 0.15 and block.ops:
            del block.ops[rng.randrange(len(block.ops))]
        elif r < 0.25 and block.vars:
            del block.vars[rng.randrange(len(block.vars))]
        elif r < 0.4 and block.ops:
            block.ops[rng.randrange(len(block.ops))].type = rng.choice(_OP_TYPES)
        elif r < 0.55 and block.ops:
            op = block.ops[rng.randrange(len(block.ops))]
            slots = list(op.inputs) + list(op.outputs)
            if slots:
                slot = rng.choice(slots)
                if rng.random() < 0.5:
                    del slot.arguments[:]
                else:
                    slot.parameter = rng.choice(_SLOTS)
        elif r < 0.7 and block.vars:
            var = block.vars[rng.randrange(len(block.vars))]
            dims = var.type.lod_tensor.tensor.dims
            del dims[:]
            dims.extend(rng.choice([[], [0], [-1], [2**40], [3, 3, 3], [32, 3, 3, 3], [1] * 9]))
            if rng.random() < 0.3:
                var.persistable = not var.persistable
            if rng.random() < 0.2:
                var.type.lod_tensor.tensor.data_type = rng.choice([0, 4, 22, 99, -1])
        elif r < 0.8 and block.ops:
            op = block.ops[rng.randrange(len(block.ops))]
            if op.attrs:
                attr = op.attrs[rng.randrange(len(op.attrs))]
                attr.name = rng.choice(["ksize", "adaptive", "scale", "bias", attr.name])
                attr.ClearField("ints") if rng.random() < 0.5 else attr.ints.extend([rng.choice([0, -1, 7])])
        elif r < 0.9 and block.ops:
            i = rng.randrange(len(block.ops))
            block.ops.add().CopyFrom(block.ops[i])
        elif len(block.ops) > 1:
            i, j = rng.randrange(len(block.ops)), rng.randrange(len(block.ops))
            a, b = type(block.ops[i])(), type(block.ops[j])()
            a.CopyFrom(block.ops[i])
            b.CopyFrom(block.ops[j])
            block.ops[i].CopyFrom(b)
            block.ops[j].CopyFrom(a)
    return program.SerializeToString()


# --- .pdiparams: LoDTensor records against a program ---------------------------------------------------------

def _pdiparams(data: bytes) -> None:
    from liteseg.formats.pdiparams import parse_pdiparams

    parse_pdiparams(data, S.mini_program(), "model.pdiparams")


def _pdiparams_record(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the first record's header: version, LoD levels, tensor-desc length, dtype and dims."""
    from liteseg.formats.paddle_proto import TensorDesc

    if len(data) < 24:
        return data
    version, lod, tver, desc_len = struct.unpack("<IQIi", data[:20])
    desc = TensorDesc()
    try:
        desc.ParseFromString(data[20:20 + desc_len])
    except Exception:
        return data
    r = rng.random()
    if r < 0.2:
        version = rng.choice([0, 1, 2**32 - 1])
    elif r < 0.4:
        lod = rng.choice([0, 1, 16, 17, 2**63])
    elif r < 0.6:
        desc.data_type = rng.choice([0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 99])
    elif r < 0.8:
        del desc.dims[:]
        desc.dims.extend(rng.choice([[], [0], [-1], [2**31], [2**62, 2**62], [32]]))
    else:
        desc_len = rng.choice([-1, 0, 2**31 - 1, desc_len + 1])
    raw = desc.SerializeToString()
    new_len = desc_len if r >= 0.8 else len(raw)
    return struct.pack("<IQIi", version, lod, tver, new_len) + raw + data[20 + max(desc_len, 0):]


# --- deploy.yaml / inference.yml -----------------------------------------------------------------------------

def _deploy(data: bytes) -> None:
    from liteseg.formats.deploy import parse_deploy
    from liteseg.formats.inference_model import deploy_normalization

    deploy = parse_deploy(data, "deploy.yaml")
    deploy_normalization(deploy, "deploy.yaml")


_YAML_SPECIALS = [b"Deploy: &a [*a]\n", b"a: &a [&b [x, x], *b, *b]\nDeploy: {transforms: *a}\n",
                  b"Deploy: !!python/object/apply:os.system [echo]\n", b"Deploy:\n  model: [\n", b"\xff\xfe\x00",
                  b"Deploy: {input_shape: [1e400, .nan]}\n", b"- - - - - - - - - -\n" * 50, b"Deploy: 0x_1\n",
                  b"Deploy: {transforms: [{type: Normalize, mean: [a, b, c]}]}\n", b"Deploy: 2001-02-30\n"]


def _deploy_tree(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        return rng.choice(_YAML_SPECIALS)
    try:
        tree = yaml.safe_load(data)
    except Exception:
        return data
    try:
        return yaml.safe_dump(mutate_tree(tree, rng), allow_unicode=rng.random() < 0.5).encode()
    except (yaml.YAMLError, ValueError, RecursionError):
        return data


# --- .tgz / .tar inference-model packages --------------------------------------------------------------------

def _package(data: bytes) -> None:
    from liteseg.formats.inference_model import read_inference_model

    read_inference_model(_as_file(data, "model.tgz"))


_MEMBER_NAMES = ["model.pdmodel", "../model.pdmodel", "/abs/model.pdmodel", "a/../../model.pdmodel", "x/model.pdmodel",
                 "model.pdiparams", "../model.pdiparams", "deploy.yaml", "a/b/model.pdmodel", "", ".", "model.pdmodel/",
                 "é.pdmodel", "a" * 99 + ".pdmodel"]


def _package_tar(data: bytes, rng: random.Random) -> bytes:
    """Re-pack the package's files with hostile member names, kinds, claimed sizes or a gzip bomb."""
    r = rng.random()
    if r < 0.01:
        return S.gzip_bomb_member(32 << 20)
    files = dict(S.package_files())
    buf = io.BytesIO()
    mode = rng.choice(["w:gz", "w", "w:bz2", "w:xz"]) if r < 0.9 else "w:gz"
    with tarfile.open(fileobj=buf, mode=mode, format=rng.choice([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT,
                                                                  tarfile.PAX_FORMAT])) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(rng.choice(_MEMBER_NAMES) if rng.random() < 0.3 else name)
            kind = rng.random()
            if kind < 0.1:
                info.type, info.linkname = tarfile.SYMTYPE, rng.choice(["/etc/passwd", "../../x", name])
                tar.addfile(info)
                continue
            if kind < 0.15:
                info.type, info.linkname = tarfile.LNKTYPE, rng.choice(["model.pdiparams", "nothing"])
                tar.addfile(info)
                continue
            if kind < 0.2:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            if rng.random() < 0.2:
                content = mutate_bytes(content, rng, 1 << 20)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    out = buf.getvalue()
    if mode == "w" and rng.random() < 0.3 and len(out) >= 512:
        # a member header that claims a huge size (8 GiB .. 64 GiB in the octal size field), checksum fixed
        header = bytearray(out[:512])
        header[124:136] = rng.choice([b"77777777777\0", b"10000000000\0", b"\x80" + bytes(3) + b"\x7f" * 8])
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        out = bytes(header) + out[512:]
    return out


# --- .safetensors and its liteseg metadata -------------------------------------------------------------------

def _native(data: bytes) -> None:
    from liteseg.formats.native import load_native

    load_native(_as_file(data, "model.safetensors"))


def _safetensors_header(data: bytes, rng: random.Random) -> bytes:
    """Mutate the JSON header (or the liteseg metadata JSON inside it) and fix or break its length field."""
    if len(data) < 8:
        return data
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        return data
    if rng.random() < 0.6 and isinstance(header.get("__metadata__"), dict) and "liteseg" in header["__metadata__"]:
        header["__metadata__"]["liteseg"] = json_mutator(header["__metadata__"]["liteseg"], rng)
    else:
        header = mutate_tree(header, rng)
    raw = json.dumps(header).encode()
    length = len(raw) if rng.random() < 0.9 else rng.choice([0, 2**63, len(raw) + 7])
    return struct.pack("<Q", length) + raw + data[8 + n:]


# --- ONNX files and the liteseg metadata export embeds ------------------------------------------------------

def _onnx(data: bytes) -> None:
    from liteseg.inference.onnx_graph import open_graph

    open_graph(_as_file(data, "model.onnx"))


def _onnx_meta(data: bytes, rng: random.Random) -> bytes:
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception:
        return data
    props = [p for p in model.metadata_props if p.key == "liteseg"]
    if props and rng.random() < 0.8:
        props[0].value = json_mutator(props[0].value, rng)
    elif model.graph.input and rng.random() < 0.5:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if dims:
            del dims[rng.randrange(len(dims))]
    elif rng.random() < 0.5:
        del model.graph.input[:]
    else:
        del model.graph.output[:]
    return model.SerializeToString()


# --- image decoding for predict (files) and serve (uploads) ------------------------------------------------

_SUFFIXES = [".png", ".jpg", ".bmp", ".tif", ".webp", ".gif", ".png"]


def _image_file(data: bytes) -> None:
    from liteseg.data.io import read_image as read_dataset_image, read_label
    from liteseg.images import read_image
    from liteseg.errors import LitesegError

    path = _as_file(data, "image" + _SUFFIXES[len(data) % len(_SUFFIXES)])  # often mislabelled on purpose
    for reader in (read_image, read_dataset_image, read_label):
        try:
            reader(path)
        except LitesegError:
            pass


def _image_upload(data: bytes) -> None:
    from liteseg.serve.codecs import decode_image

    decode_image(data, max_pixels=4096 * 4096)


def _png_dims(data: bytes, rng: random.Random) -> bytes:
    """Claim other dimensions in a PNG's IHDR (CRC fixed): decompression bombs, zero sizes, huge widths."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33:
        return data
    w, h = rng.choice([(0, 1), (1, 0), (2**31 - 1, 1), (30000, 30000), (9000, 9000), (65535, 65535), (1, 2**24),
                       (rng.randint(1, 5000), rng.randint(1, 5000))])
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", w, h)
    if rng.random() < 0.3:
        ihdr[12] = rng.choice([1, 2, 4, 8, 16, 3])  # bit depth
        ihdr[13] = rng.choice([0, 2, 3, 4, 6, 7])  # colour type
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


# --- Paddle 3 PIR programs (inference.json) ------------------------------------------------------------------

def _pir(data: bytes) -> None:
    from liteseg.formats.pir import parse_pir
    from liteseg.formats.pir_info import analyze_pir
    from liteseg.formats.program import recover_architecture

    recover_architecture(analyze_pir(parse_pir(data, "inference.json"), "inference.json"), "inference.json")


def _pir_tree(data: bytes, rng: random.Random) -> bytes:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data
    return json_mutator(text, rng).encode()


def _pir_seeds() -> list[bytes]:
    return [S.fixture("pp_liteseg_t_pir", d, "inference.json").read_bytes()
            for d in ("inference", "inference_argmax", "inference_fixed512")]


# Name -> harness.
HARNESSES: dict[str, Harness] = {h.name: h for h in [
    Harness("pdparams", _pdparams, S.pdparams_seeds, (_pdparams_tree, _deep_nesting)),
    Harness("pdmodel", _pdmodel, S.pdmodel_seeds, (_program_tree,)),
    Harness("pdiparams", _pdiparams, S.pdiparams_seeds, (_pdiparams_record,)),
    Harness("deploy", _deploy, S.deploy_seeds, (_deploy_tree,)),
    Harness("package", _package, S.package_seeds, (_package_tar,), rss_cap_mb=768, max_len=4 << 20),
    Harness("safetensors", _native, S.native_seeds, (_safetensors_header,)),
    Harness("onnx", _onnx, S.onnx_seeds, (_onnx_meta,)),
    Harness("image_file", _image_file, S.image_seeds, (_png_dims,), rss_cap_mb=1536),
    Harness("image_upload", _image_upload, S.image_seeds, (_png_dims,), rss_cap_mb=1024),
    Harness("pir", _pir, _pir_seeds, (_pir_tree,)),
]}
