"""Paddle combined parameter files (``.pdiparams``): nameless LoDTensor records sorted by variable name."""
from __future__ import annotations

import math
import os
import struct
from collections import OrderedDict
from typing import Mapping

import numpy as np

from ..errors import FormatError
from .paddle_proto import NON_PARAM_VAR_TYPES, VAR_TYPES, ProgramDesc, TensorDesc

_NP_TO_VAR = {np.dtype(v): k for k, v in VAR_TYPES.items() if v != "bfloat16"}


def persistable_vars(program: ProgramDesc) -> "OrderedDict[str, tuple[str, list[int]]]":
    """Stored variables of block 0 in file order (byte-wise sorted names): name -> (dtype, dims)."""
    found = {}
    for var in program.blocks[0].vars:
        if var.persistable and var.type.type not in NON_PARAM_VAR_TYPES:
            t = var.type.lod_tensor.tensor
            found[var.name] = (VAR_TYPES.get(t.data_type, f"type{t.data_type}"), list(t.dims))
    return OrderedDict(sorted(found.items(), key=lambda kv: kv[0].encode()))


def read_pdiparams(path: str | os.PathLike, program: ProgramDesc) -> "OrderedDict[str, np.ndarray]":
    """Read every stored tensor of ``program`` from ``path``; checks dims, dtype and the exact file length."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file (the .pdiparams beside the .pdmodel)")
    with open(path, "rb") as f:
        return parse_pdiparams(f.read(), program, path)


def parse_pdiparams(buf: bytes, program: ProgramDesc, path: str = "<bytes>") -> "OrderedDict[str, np.ndarray]":
    """Decode ``.pdiparams`` bytes for ``program``; ``path`` only names the source in errors."""
    return parse_tensor_stream(buf, persistable_vars(program), path)


def parse_tensor_stream(buf: bytes, expected: "Mapping[str, tuple[str, list[int]]]",
                        path: str = "<bytes>") -> "OrderedDict[str, np.ndarray]":
    """Decode the records of ``buf`` as the tensors ``expected`` (name -> (dtype, dims), in file order).

    Checks each record's header, dtype and dims against ``expected`` (an empty dims list accepts any shape)
    and that the file ends exactly after the last tensor; every mismatch is a FormatError naming the tensor.
    """
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    pos = 0

    def take(n: int, what: str, name: str) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(buf):
            raise FormatError(f"{path}: file ends inside {what} of {name!r} (offset {pos}, need {n} bytes, "
                              f"{len(buf) - pos} left); the file is truncated, re-export or re-download it")
        chunk = buf[pos:pos + n]
        pos += n
        return chunk

    for name, (dtype, dims) in expected.items():
        (version,) = struct.unpack("<I", take(4, "the LoD header", name))
        (lod_levels,) = struct.unpack("<Q", take(8, "the LoD header", name))
        if version != 0 or lod_levels > 16:
            raise FormatError(f"{path}: bad record header for {name!r} (version {version}, {lod_levels} LoD "
                              f"levels); not a .pdiparams file for this program")
        for _ in range(lod_levels):
            (size,) = struct.unpack("<Q", take(8, "a LoD level", name))
            take(size, "a LoD level", name)
        take(4, "the tensor version", name)
        (desc_len,) = struct.unpack("<i", take(4, "the tensor header", name))
        raw_desc = take(desc_len, "the tensor header", name)
        desc = TensorDesc()
        try:
            desc.ParseFromString(raw_desc)
        except Exception:
            raise FormatError(f"{path}: corrupt tensor header for {name!r}") from None
        np_dtype = VAR_TYPES.get(desc.data_type)
        if np_dtype is None or np_dtype == "bfloat16":
            raise FormatError(f"{path}: tensor {name!r} has unsupported data type {desc.data_type}")
        if dtype and np_dtype != dtype:
            raise FormatError(f"{path}: tensor {name!r} is {np_dtype} in the params file but {dtype} in the "
                              f"program; the two files do not belong together")
        file_dims = list(desc.dims)
        if dims and file_dims != dims:
            raise FormatError(f"{path}: tensor {name!r} has shape {file_dims} in the params file but {dims} in "
                              f"the program; the two files do not belong together")
        if any(d < 0 for d in file_dims):
            raise FormatError(f"{path}: tensor {name!r} has negative dims {file_dims}; the file is corrupt")
        count = math.prod(file_dims)
        data = take(count * np.dtype(np_dtype).itemsize, "the data", name)
        out[name] = np.frombuffer(data, dtype=np.dtype(np_dtype).newbyteorder("<")).reshape(file_dims).copy()
    if pos != len(buf):
        raise FormatError(f"{path}: {len(buf) - pos} unexpected bytes after the last of {len(out)} tensors; "
                          f"the params file does not belong to this program")
    return out


def write_pdiparams(path: str | os.PathLike, params: Mapping[str, np.ndarray]) -> None:
    """Write tensors as a ``.pdiparams`` file (records in byte-wise name order), atomically."""
    from ..utils.io import atomic_write_bytes

    chunks = []
    for name in sorted(params, key=str.encode):
        arr = np.ascontiguousarray(params[name])
        desc = TensorDesc(data_type=_NP_TO_VAR[arr.dtype], dims=list(arr.shape)).SerializeToString()
        chunks += [struct.pack("<IQI", 0, 0, 0), struct.pack("<i", len(desc)), desc,
                   arr.astype(arr.dtype.newbyteorder("<")).tobytes()]
    atomic_write_bytes(path, b"".join(chunks))
