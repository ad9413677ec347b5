"""Paddle inference models as a folder, a ``.tar`` or a ``.tgz``/``.tar.gz`` (read in memory): Paddle 2's
``model.pdmodel`` + ``model.pdiparams`` [+ ``.pdiparams.info``] + ``deploy.yaml`` (e.g. FastDeploy's
``PP_LiteSeg_B_STDC2_cityscapes_without_argmax_infer.tgz``), or Paddle 3's PIR ``inference.json`` +
``inference.pdiparams`` + ``inference.yml`` (e.g. PaddleX's ``PP-LiteSeg-T_infer.tar``)."""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
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
from .deploy import parse_config
from .paddle_proto import ProgramDesc
from .pdiparams import parse_pdiparams, parse_tensor_stream, persistable_vars
from .pdparams import normalize_paddle_keys
from .pir import PirProgram, is_pir, parse_pir
from .pir_info import analyze_pir
from .program import ParamUse, ProgramInfo, analyze_program, parse_program, recover_architecture
from .safe_pickle import loads_pickle

ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar")
PROGRAM_SUFFIXES = (".pdmodel", ".json")
_CONFIG_NAMES = ("deploy.yaml", "deploy.yml", "inference.yml", "inference.yaml")
MAX_ARCHIVE_BYTES = 1 << 30  # unpacked; PaddleSeg's largest segmentation packages are a few hundred MB


@dataclass
class InferenceModel:
    """A parsed inference model: program, its summary, tensors by Paddle name and the deploy config."""

    source: str
    program: ProgramDesc | PirProgram
    info: ProgramInfo
    params: "OrderedDict[str, np.ndarray]"
    param_info: dict[str, Any] | None = None
    deploy: dict[str, Any] = field(default_factory=dict)
    model_name: str = ""  # Global.model_name of a PaddleX inference.yml
    program_file: str = ""
    notes: list[str] = field(default_factory=list)  # what mapping the tensors did beyond the program's uses


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
    """Files of the one folder in the archive that holds a program (read in memory, nothing extracted).

    At most ``MAX_ARCHIVE_BYTES`` are unpacked, so a decompression bomb or a member claiming a huge size
    ends in a FormatError instead of filling the memory.
    """
    try:
        with _open_stream(path) as raw, tarfile.open(fileobj=_CappedStream(raw, MAX_ARCHIVE_BYTES, path),
                                                     mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            models = [m for m in members if m.name.endswith(PROGRAM_SUFFIXES)]
            if not models:
                raise FormatError(f"{path}: the archive holds no .pdmodel or .json program; not a Paddle "
                                  f"inference model")
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


def _pick(files: dict[str, bytes], preferred: Any, suffix: str, source: str) -> str:
    if isinstance(preferred, str) and preferred in files:
        return preferred
    found = sorted(n for n in files if n.endswith(suffix))
    if len(found) != 1:
        what = "no" if not found else f"several ({', '.join(found)})"
        raise FormatError(f"{source}: {what} {suffix} files; expected exactly one (or one named in deploy.yaml)")
    return found[0]


def _pick_program(files: dict[str, bytes], declared: Any, source: str) -> str:
    """The program file: the one the config names; else, as PaddleX does, its ``.json`` namesake (Paddle 3's
    export writes ``model: inference.pdmodel`` beside an ``inference.json``); else the only one there is."""
    if isinstance(declared, str):
        if declared in files:
            return declared
        stem = declared.rsplit(".", 1)[0]
        if f"{stem}.json" in files:
            return f"{stem}.json"
    found = sorted(n for n in files if n.endswith(PROGRAM_SUFFIXES))
    if "inference.json" in found:
        return "inference.json"
    if len(found) != 1:
        what = "no" if not found else f"several ({', '.join(found)})"
        raise FormatError(f"{source}: {what} program files (.pdmodel or .json); expected exactly one (or one named "
                          f"in deploy.yaml / inference.yml)")
    return found[0]


def _read_config(files: dict[str, bytes], source: str) -> dict[str, Any]:
    """The whole deploy config (``deploy.yaml`` or PaddleX's ``inference.yml``), or {} when there is none."""
    name = next((n for n in _CONFIG_NAMES if n in files), None)
    return parse_config(files[name], f"{source}/{name}") if name else {}


def read_inference_model(path: str | os.PathLike) -> InferenceModel:
    """Read a Paddle inference model from a folder, a ``.pdmodel`` / ``.json`` path or a ``.tar``/``.tgz``."""
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file or folder")
    chosen = None
    if p.is_file() and p.suffix in PROGRAM_SUFFIXES:
        chosen, p = p.name, p.parent
    files = _read_archive(p) if p.is_file() else _read_folder(p)
    source = str(p)
    config = _read_config(files, source)
    deploy = config.get("Deploy") or {}
    model_name = chosen or _pick_program(files, deploy.get("model"), source)
    params_name = _pick(files, deploy.get("params"), ".pdiparams", source)
    data = files[model_name]
    program: ProgramDesc | PirProgram
    if is_pir(data):
        program = parse_pir(data, f"{source}/{model_name}")
        info = analyze_pir(program, f"{source}/{model_name}")
        params = parse_tensor_stream(files[params_name], program.stored_tensors(), f"{source}/{params_name}")
    else:
        program = parse_program(data, f"{source}/{model_name}")
        info = analyze_program(program, f"{source}/{model_name}")
        params = parse_pdiparams(files[params_name], program, f"{source}/{params_name}")
    param_info = None
    info_name = params_name + ".info"
    if info_name in files:
        param_info = loads_pickle(files[info_name], f"{source}/{info_name}")
    global_section = config.get("Global")
    name = global_section.get("model_name") if isinstance(global_section, dict) else None
    return InferenceModel(source, program, info, params, param_info, deploy,
                          model_name=name if isinstance(name, str) else "", program_file=model_name)


def deploy_normalization(deploy: dict[str, Any], source: str = "deploy.yaml") -> tuple[list[float], list[float]]:
    """Mean/std of the deploy config's ``Normalize`` transform (PaddleSeg default 0.5/0.5)."""
    transforms = deploy.get("transforms") or []
    for t in transforms if isinstance(transforms, list) else []:
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
    for (kind_o, keys), use in zip(ours, im.info.uses):
        kind_t, names = use.kind, use.names
        if kind_o != kind_t:
            raise FormatError(f"{im.source}: program order diverges at {names[0]} ({kind_t}) vs {keys[0]} "
                              f"({kind_o}); unsupported program layout")
        if use.attrs:
            _check_layer(im.source, model.get_submodule(keys[0].rsplit(".", 1)[0]), use, keys[0])
        for key, name in zip(keys, names):
            value = im.params.get(name)
            if value is None:
                raise FormatError(f"{im.source}: the program uses {name!r} but the params file lacks it")
            if tuple(value.shape) != shapes[key]:
                raise FormatError(f"{im.source}: {name} has shape {list(value.shape)} but {key} expects "
                                  f"{list(shapes[key])}")
            out[key] = value
    unused = set(im.params) - {n for _, names in theirs for n in names} - set(im.info.unused_params)
    if unused:
        raise FormatError(f"{im.source}: {len(unused)} stored tensors are never used by a recognised layer, e.g. "
                          f"{sorted(unused)[:3]}")
    dangling = [n for n in im.info.unused_params if n in im.params]
    if dangling:
        aux = _aux_heads(im, model, dangling)
        out.update(aux)
        heads = sorted({".".join(k.split(".")[:2]) for k in aux})
        what = f"loaded into the auxiliary heads ({', '.join(heads)})" if aux else f"ignored: {', '.join(dangling)}"
        im.notes.append(f"{len(dangling)} parameters that no op of the program uses (Paddle 3.0 keeps training-only "
                        f"layers) {what}")
    return out


_PADDLE_PARAM = re.compile(r"^(conv2d|batch_norm2d)_(\d+)\.([wb]_\d+)$")
_BN_SLOTS = {"w_0": "weight", "b_0": "bias", "w_1": "running_mean", "w_2": "running_var"}
_AUX_HEAD = re.compile(r"^seg_heads\.[1-9]\d*\.")


def _aux_heads(im: InferenceModel, model: nn.Module, dangling: list[str]) -> "OrderedDict[str, np.ndarray]":
    """The unused tensors as our auxiliary heads' (``seg_heads.1``, ...) when their names and shapes say they are
    exactly those layers, in creation order (Paddle numbers layers as it creates them); else {} (ignored)."""
    convs: dict[int, str] = {}
    bns: dict[int, dict[str, str]] = {}
    for name in dangling:
        m = _PADDLE_PARAM.match(name)
        if m is None:
            return OrderedDict()
        kind, number, slot = m.group(1), int(m.group(2)), m.group(3)
        if kind == "conv2d" and slot == "w_0":
            convs[number] = name
        elif kind == "batch_norm2d" and slot in _BN_SLOTS:
            bns.setdefault(number, {})[_BN_SLOTS[slot]] = name
        else:
            return OrderedDict()
    heads = [(key, module) for key, module in model.named_modules() if _AUX_HEAD.match(key + ".")]
    ours_conv = [key for key, m in heads if isinstance(m, nn.Conv2d) and m.bias is None]
    ours_bn = [key for key, m in heads if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != len(ours_conv) or len(bns) != len(ours_bn) or any(len(v) != 4 for v in bns.values()):
        return OrderedDict()
    pairs = [(f"{key}.weight", convs[n]) for key, n in zip(ours_conv, sorted(convs))]
    pairs += [(f"{key}.{slot}", bns[n][slot]) for key, n in zip(ours_bn, sorted(bns)) for slot in _BN_SLOTS.values()]
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if any(tuple(im.params[name].shape) != shapes[key] for key, name in pairs):
        return OrderedDict()
    return OrderedDict((key, im.params[name]) for key, name in pairs)


def _check_layer(source: str, module: nn.Module, use: ParamUse, key: str) -> None:
    """The program's conv / batch-norm settings (``use.attrs``) must be those of our layer."""
    if isinstance(module, nn.Conv2d):
        ours = {"stride": tuple(module.stride), "padding": tuple(module.padding), "dilation": tuple(module.dilation),
                "groups": module.groups}
        diff = {k: (v, ours[k]) for k, v in use.attrs.items() if k in ours and v != ours[k]}
    elif isinstance(module, nn.BatchNorm2d):
        eps = use.attrs.get("eps", module.eps)
        diff = {} if abs(eps - module.eps) <= 1e-6 * module.eps + 1e-12 else {"eps": (eps, module.eps)}
    else:
        diff = {"layer": (use.kind, type(module).__name__)}
    if diff:
        detail = ", ".join(f"{k} {a} in the program vs {b}" for k, (a, b) in diff.items())
        raise FormatError(f"{source}: {use.names[0]} ({key}) is used with {detail}; the recovered architecture "
                          f"does not compute the same thing, so liteseg refuses the program")


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
