"""liteseg's own format: one safetensors file with the state dict and JSON metadata (no pickle, no protobuf)."""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import FormatError
from ..utils.io import atomic_write_bytes

FORMAT_VERSION = 1
_KEY = "liteseg"


def save_native(path: str | os.PathLike, state: dict[str, torch.Tensor], meta: dict[str, Any],
                half: bool = False, overwrite: bool = False) -> None:
    """Write ``state`` (+ ``meta`` as JSON) to a ``.safetensors`` file atomically; ``half`` stores fp16."""
    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if half and v.is_floating_point() else v
    header = {_KEY: json.dumps({"format_version": FORMAT_VERSION, **meta})}
    try:
        atomic_write_bytes(path, save(tensors, metadata=header), overwrite=overwrite)
    except FileExistsError as e:
        raise FormatError(str(e)) from None


def load_native(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a liteseg ``.safetensors`` file: (float32 state dict, metadata dict)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file")
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable safetensors file ({e}); truncated or corrupt") from None
    if _KEY not in header:
        raise FormatError(f"{path}: safetensors file without liteseg metadata; pass the architecture explicitly "
                          f"(liteseg.create_model(name, weights=path))")
    try:
        meta = json.loads(header[_KEY])
    except ValueError as e:
        raise FormatError(f"{path}: the liteseg metadata is not valid JSON ({e}); re-convert the file") from None
    version = meta.get("format_version", 0) if isinstance(meta, dict) else None
    if type(version) is not int or any(not isinstance(meta.get(k, {}), dict) for k in ("meta", "config")) \
            or not isinstance(meta.get("arch", ""), str):
        raise FormatError(f"{path}: the liteseg metadata is damaged (expected an object with format_version, arch, "
                          f"config and meta); re-convert the file")
    if version > FORMAT_VERSION:
        raise FormatError(f"{path}: written by a newer liteseg (format {meta['format_version']}); upgrade liteseg")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, meta
