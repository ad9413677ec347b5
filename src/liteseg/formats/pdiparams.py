"""Paddle combined parameter files (``.pdiparams``): nameless LoDTensor records sorted by variable name."""
from __future__ import annotations

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
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    pos = 0

    def take(n: int, what: str, name: str) -> bytes:
        nonlocal pos
        if pos + n > len(buf):
            raise FormatError(f"{path}: file ends inside {what} of {name!r} (offset {pos}, need {n} bytes, "
                              f"{len(buf) - pos} left); the file is truncated, re-export or re-download it")
        chunk = buf[pos:pos + n]
        pos += n
        return chunk

    for name, (dtype, dims) in persistable_vars(program).items():
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
        desc = TensorDesc()
        try:
            desc.ParseFromString(take(desc_len, "the tensor header", name))
        except Exception:
            raise FormatError(f"{path}: corrupt tensor header for {name!r}") from None
        np_dtype = VAR_TYPES.get(desc.data_type)
        if np_dtype is None or np_dtype == "bfloat16":
            raise FormatError(f"{path}: tensor {name!r} has unsupported data type {desc.data_type}")
        file_dims = list(desc.dims)
        if dims and file_dims != dims:
            raise FormatError(f"{path}: tensor {name!r} has shape {file_dims} in the params file but {dims} in "
                              f"the program; the two files do not belong together")
        count = int(np.prod(file_dims)) if file_dims else 1
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
