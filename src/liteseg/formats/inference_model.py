"""Paddle inference models (``model.pdmodel`` + ``model.pdiparams`` [+ ``.pdiparams.info``] + ``deploy.yaml``)
as a folder or a ``.tgz`` (e.g. FastDeploy's ``PP_LiteSeg_B_STDC2_cityscapes_without_argmax_infer.tgz``)."""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from ..errors import FormatError
from .deploy import parse_deploy
from .paddle_proto import ProgramDesc
from .pdiparams import parse_pdiparams, persistable_vars
from .pdparams import normalize_paddle_keys
from .program import ProgramInfo, analyze_program, parse_program, recover_architecture
from .safe_pickle import loads_pickle

ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar")
MAX_ARCHIVE_BYTES = 1 << 30  # unpacked; PaddleSeg's largest segmentation packages are a few hundred MB


@dataclass
class InferenceModel:
    """A parsed inference model: program, its summary, tensors by Paddle name and the deploy config."""

    source: str
    program: ProgramDesc
    info: ProgramInfo
    params: "OrderedDict[str, np.ndarray]"
    param_info: dict[str, Any] | None = None
    deploy: dict[str, Any] = field(default_factory=dict)


def is_archive(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


class _CappedStream:
    """A (decompressed) archive stream that refuses to go past ``limit`` bytes: gzip bombs end in a FormatError."""

    def __init__(self, raw: Any, limit: int, source: Path) -> None:
        self.raw, self.limit, self.source = raw, limit, source

    def _refuse(self) -> None:
        raise FormatError(f"{self.source}: the archive unpacks to more than {self.limit >> 20} MiB; not a model "
                          f"package (or a decompression bomb)")

    def read(self, size: int | None = -1) -> bytes:
        pos = self.raw.tell()
        if size is None or size < 0 or pos + size > self.limit:
            size = self.limit - pos + 1
        data = self.raw.read(size)
        if pos + len(data) > self.limit:
            self._refuse()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset if whence == 0 else self.raw.tell() + offset) > self.limit:
            self._refuse()
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _open_stream(path: Path) -> Any:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def _read_archive(path: Path) -> dict[str, bytes]:
    """Files of the one folder in the archive that holds a ``.pdmodel`` (read in memory, nothing extracted).

    At most ``MAX_ARCHIVE_BYTES`` are unpacked, so a decompression bomb or a member claiming a huge size
    ends in a FormatError instead of filling the memory.
    """
    try:
        with _open_stream(path) as raw, tarfile.open(fileobj=_CappedStream(raw, MAX_ARCHIVE_BYTES, path),
                                                     mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            models = [m for m in members if m.name.endswith(".pdmodel")]
            if not models:
                raise FormatError(f"{path}: the archive holds no .pdmodel file; not a Paddle inference model")
            folder = os.path.dirname(models[0].name)
            if len({os.path.dirname(m.name) for m in models}) > 1:
                raise FormatError(f"{path}: the archive holds several models: {[m.name for m in models]}")
            chosen = [m for m in members if os.path.dirname(m.name) == folder]
            if sum(m.size for m in chosen) > MAX_ARCHIVE_BYTES:
                raise FormatError(f"{path}: the archive's members claim more than {MAX_ARCHIVE_BYTES >> 20} MiB; "
                                  f"not a model package")
            out = {}
            for m in chosen:
                f = tar.extractfile(m)
                if f is not None:
                    out[os.path.basename(m.name)] = f.read()
            return out
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        raise FormatError(f"{path}: cannot read the archive ({e}); the download is incomplete or corrupt") from None


def _pick(files: dict[str, bytes], preferred: str | None, suffix: str, source: str) -> str:
    if preferred and preferred in files:
        return preferred
    found = sorted(n for n in files if n.endswith(suffix))
    if len(found) != 1:
        what = "no" if not found else f"several ({', '.join(found)})"
        raise FormatError(f"{source}: {what} {suffix} files; expected exactly one (or one named in deploy.yaml)")
    return found[0]


def read_inference_model(path: str | os.PathLike) -> InferenceModel:
    """Read a Paddle inference model from a folder, a ``.pdmodel`` path or a ``.tgz`` archive."""
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file or folder")
    if p.is_file() and p.suffix == ".pdmodel":
        p = p.parent
    files = _read_archive(p) if p.is_file() else _read_folder(p)
    source = str(p)
    deploy_name = next((n for n in ("deploy.yaml", "deploy.yml", "inference.yml", "inference.yaml") if n in files),
                       None)
    deploy = parse_deploy(files[deploy_name], f"{source}/{deploy_name}") if deploy_name else {}
    model_name = _pick(files, deploy.get("model"), ".pdmodel", source)
    params_name = _pick(files, deploy.get("params"), ".pdiparams", source)
    program = parse_program(files[model_name], f"{source}/{model_name}")
    info = analyze_program(program, f"{source}/{model_name}")
    params = parse_pdiparams(files[params_name], program, f"{source}/{params_name}")
    param_info = None
    info_name = params_name + ".info"
    if info_name in files:
        param_info = loads_pickle(files[info_name], f"{source}/{info_name}")
    return InferenceModel(source, program, info, params, param_info, deploy)


def deploy_normalization(deploy: dict[str, Any], source: str = "deploy.yaml") -> tuple[list[float], list[float]]:
    """Mean/std of the deploy config's ``Normalize`` transform (PaddleSeg default 0.5/0.5)."""
    for t in deploy.get("transforms") or []:
        if isinstance(t, dict) and t.get("type") == "Normalize":
            mean, std = t.get("mean", [0.5, 0.5, 0.5]), t.get("std", [0.5, 0.5, 0.5])
            for name, values in (("mean", mean), ("std", std)):
                if not (isinstance(values, list) and len(values) == 3
                        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
                    raise FormatError(f"{source}: Normalize.{name} must be a list of three numbers, found {values!r}")
            if not all(v > 0 for v in std):
                raise FormatError(f"{source}: Normalize.std must be positive, found {std!r}")
            return [float(v) for v in mean], [float(v) for v in std]
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def architecture(im: InferenceModel) -> tuple[str, dict[str, Any]]:
    """Registry name and constructor kwargs recovered from the program."""
    return recover_architecture(im.info, im.source)


def execution_order(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Our parameters in the order an eval forward uses them, grouped like Paddle ops: conv, bias, bn, scale."""
    order: list[tuple[str, list[str]]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            def conv_hook(m, _i, _o, name=name):
                order.append(("conv", [f"{name}.weight"]))
                if m.bias is not None:
                    order.append(("bias", [f"{name}.bias"]))
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.BatchNorm2d):
            keys = [f"{name}.{s}" for s in ("weight", "bias", "running_mean", "running_var")]
            hooks.append(module.register_forward_hook(lambda *_a, keys=keys: order.append(("bn", keys))))
        elif isinstance(getattr(module, "_scale", None), nn.Parameter) and hasattr(module, "conv_xy_atten"):
            key = [f"{name}._scale"]
            hooks.append(module.conv_xy_atten.register_forward_hook(
                lambda *_a, key=key: order.append(("scale", key))))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order


def to_state_dict(im: InferenceModel, model: nn.Module) -> "OrderedDict[str, np.ndarray]":
    """Tensors of ``im`` under liteseg names, via ``.pdiparams.info`` when present, else by walking the program."""
    if im.param_info:
        named = OrderedDict()
        for internal, value in im.params.items():
            entry = im.param_info.get(internal)
            if not isinstance(entry, dict) or "structured_name" not in entry:
                raise FormatError(f"{im.source}: .pdiparams.info has no structured name for {internal!r}")
            named[entry["structured_name"]] = value
        layers = [len(list(s)) for s in _stages(model)]
        return normalize_paddle_keys(named, im.source, layers=layers)
    return _map_by_execution(im, model)


def _stages(model: nn.Module) -> list[list[int]]:
    layers = getattr(getattr(model, "backbone", None), "layers", None)
    if not layers:
        raise FormatError("the model has no STDC backbone to map stage aliases onto")
    return [list(range(n)) for n in layers]


def _map_by_execution(im: InferenceModel, model: nn.Module) -> "OrderedDict[str, np.ndarray]":
    ours = execution_order(model)
    if im.info.one_minus_alpha and not any(u.kind == "scale" for u in im.info.uses):
        ours = [o for o in ours if o[0] != "scale"]  # PaddleSeg <= 2.6: 1 - alpha, no _scale tensor
    theirs = [(u.kind, u.names) for u in im.info.uses]
    if len(ours) != len(theirs):
        n_ours = sum(len(k) for _, k in ours)
        raise FormatError(f"{im.source}: the program uses {len(im.params)} tensors in {len(theirs)} groups, the "
                          f"recovered model expects {n_ours} in {len(ours)}; unsupported program layout")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for (kind_o, keys), (kind_t, names) in zip(ours, theirs):
        if kind_o != kind_t:
            raise FormatError(f"{im.source}: program order diverges at {names[0]} ({kind_t}) vs {keys[0]} "
                              f"({kind_o}); unsupported program layout")
        for key, name in zip(keys, names):
            value = im.params.get(name)
            if value is None:
                raise FormatError(f"{im.source}: the program uses {name!r} but the params file lacks it")
            if tuple(value.shape) != shapes[key]:
                raise FormatError(f"{im.source}: {name} has shape {list(value.shape)} but {key} expects "
                                  f"{list(shapes[key])}")
            out[key] = value
    unused = set(persistable_vars(im.program)) - {n for _, names in theirs for n in names}
    if unused:
        raise FormatError(f"{im.source}: {len(unused)} stored tensors are never used by a recognised layer, e.g. "
                          f"{sorted(unused)[:3]}")
    return out


def write_inference_model(folder: str | os.PathLike, program: ProgramDesc, params: dict[str, np.ndarray],
                          param_info: dict[str, Any] | None = None, deploy: dict[str, Any] | None = None) -> Path:
    """Write ``model.pdmodel``, ``model.pdiparams`` (+ ``.info``, ``deploy.yaml``) into ``folder``, atomically per
    file. The program's stored variables must match ``params`` exactly."""
    import pickle

    from ..utils.io import atomic_write_bytes
    from .pdiparams import write_pdiparams

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    expected = set(persistable_vars(program))
    if expected != set(params):
        raise FormatError(f"{out}: params do not match the program's stored variables "
                          f"(extra {sorted(set(params) - expected)[:3]}, missing {sorted(expected - set(params))[:3]})")
    atomic_write_bytes(out / "model.pdmodel", program.SerializeToString())
    write_pdiparams(out / "model.pdiparams", params)
    if param_info is not None:
        atomic_write_bytes(out / "model.pdiparams.info", pickle.dumps(param_info, protocol=2))
    if deploy is not None:
        atomic_write_bytes(out / "deploy.yaml", yaml.safe_dump({"Deploy": deploy}).encode())
    return out
