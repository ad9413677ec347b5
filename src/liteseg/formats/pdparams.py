"""PaddleSeg dygraph checkpoints (``.pdparams``) -> PyTorch state dicts, without Paddle.

Key rule (documented and tested): every PaddleSeg key maps 1:1 onto liteseg's module names, except
``X._mean`` -> ``X.running_mean`` and ``X._variance`` -> ``X.running_var``. On top of that the converter
strips wrapper prefixes (``model.``, ``net.``), drops Paddle bookkeeping (keys with ``@@``), maps PaddleSeg <= 2.6
backbone aliases (``backbone.x8.0.1.*`` -> ``backbone.features.3.*``) after checking that duplicates agree,
drops the unused ``backbone.conv_last`` and keeps ``_scale`` at 1.0 where a file has none.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from ..errors import ArchitectureError, FormatError
from .safe_pickle import load_pickle

_ALIAS = re.compile(r"^backbone\.x(2|4|8|16|32)\.(?:0\.)?(\d+)\.(.+)$")
_PREFIXES = ("model.", "net.", "module.")


def read_pdparams(path: str | os.PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.pdparams`` pickle safely; return its tensors (Paddle key names) as numpy arrays."""
    data = load_pickle(path)
    if not isinstance(data, Mapping):
        raise FormatError(f"{os.fspath(path)}: expected a dict of tensors, found {type(data).__name__}")
    if "UnpackBigParamInfor@@" in data:
        raise FormatError(f"{os.fspath(path)}: split (>4 GB) Paddle checkpoints are not supported")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, value in data.items():
        if "@@" in str(key):
            continue
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
            value = value[1]  # (name, ndarray) pairs written by some Paddle versions
        if not isinstance(value, np.ndarray):
            raise FormatError(f"{os.fspath(path)}: entry {key!r} is a {type(value).__name__}, not an array")
        out[str(key)] = value
    if not out:
        raise FormatError(f"{os.fspath(path)}: the checkpoint holds no tensors")
    return out


def _strip_prefix(keys: list[str]) -> str:
    for prefix in _PREFIXES:
        if keys and all(k.startswith(prefix) for k in keys):
            return prefix
    return ""


def stage_offsets(layers: list[int]) -> dict[str, int]:
    """Index of the first ``features`` entry behind each PaddleSeg <= 2.6 alias (x2 ... x32)."""
    return {"2": 0, "4": 1, "8": 2, "16": 2 + layers[0], "32": 2 + layers[0] + layers[1]}


def _alias_target(key: str, offsets: dict[str, int]) -> str | None:
    m = _ALIAS.match(key)
    if not m:
        return None
    return f"backbone.features.{offsets[m.group(1)] + int(m.group(2))}.{m.group(3)}"


def backbone_layers(keys: list[str]) -> list[int]:
    """Blocks per STDC stage, from the ``backbone.features.<i>`` keys (stride-2 blocks own an ``avd_layer``)."""
    blocks = sorted({int(m.group(1)) for k in keys if (m := re.match(r"backbone\.features\.(\d+)\.conv_list", k))})
    starts = {int(m.group(1)) for k in keys if (m := re.match(r"backbone\.features\.(\d+)\.avd_layer", k))}
    layers: list[int] = []
    for b in blocks:
        if b in starts or not layers:
            layers.append(0)
        layers[-1] += 1
    return layers


def normalize_paddle_keys(params: Mapping[str, np.ndarray], source: str = "",
                          layers: list[int] | None = None) -> "OrderedDict[str, np.ndarray]":
    """Paddle keys -> liteseg keys (prefix, aliases, conv_last, BN statistics); values untouched.

    ``layers`` (blocks per STDC stage) resolves the <= 2.6 alias names; by default it is read from the
    ``backbone.features.*`` keys, or from the aliases themselves when a file has only those.
    """
    keys = list(params)
    prefix = _strip_prefix(keys)
    stripped = OrderedDict((k[len(prefix):], v) for k, v in params.items())
    layers = layers or backbone_layers(list(stripped)) or _alias_layers(list(stripped))
    offsets = stage_offsets(layers) if len(layers) >= 2 else None
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    aliases: dict[str, np.ndarray] = {}
    for key, value in stripped.items():
        if key.startswith("backbone.conv_last."):
            continue  # built but never used by the segmentation forward (PaddleSeg <= 2.6)
        target = _alias_target(key, offsets) if offsets else None
        if target is not None:
            aliases[target] = value
            continue
        out[_torch_name(key)] = value
    for target, value in aliases.items():
        name = _torch_name(target)
        if name in out:
            if out[name].shape != value.shape or not np.array_equal(out[name], value):
                raise FormatError(f"{source}: alias of {target} disagrees with backbone.features; the file is "
                                  f"inconsistent")
        else:
            out[name] = value
    return out


def _alias_layers(keys: list[str]) -> list[int]:
    counts = {}
    for k in keys:
        m = _ALIAS.match(k)
        if m and m.group(1) in ("8", "16", "32"):
            counts.setdefault(m.group(1), set()).add(int(m.group(2)))
    return [len(counts[s]) for s in ("8", "16", "32") if s in counts]


def _torch_name(key: str) -> str:
    if key.endswith("._mean"):
        return key[: -len("._mean")] + ".running_mean"
    if key.endswith("._variance"):
        return key[: -len("._variance")] + ".running_var"
    return key


def infer_config(state: Mapping[str, Any], source: str = "") -> tuple[str, dict[str, Any]]:
    """Recover (registry name, constructor kwargs) from liteseg-named weights."""
    keys = list(state)
    layers = backbone_layers(keys)
    arch = {(2, 2, 2): "pp_liteseg_t", (4, 5, 3): "pp_liteseg_b"}.get(tuple(layers))
    if arch is None:
        raise ArchitectureError(f"{source}: unknown architecture: STDC stage depths {layers} are neither STDC1 "
                                f"(2, 2, 2) nor STDC2 (4, 5, 3); is this a PP-LiteSeg checkpoint?")

    def shape(key: str) -> tuple[int, ...]:
        return _shape(state, key, source)

    heads = sorted({int(m.group(1)) for k in keys if (m := re.match(r"seg_heads\.(\d+)\.", k))})
    arms = sorted({int(m.group(1)) for k in keys if (m := re.match(r"ppseg_head\.arm_list\.(\d+)\.", k))})
    bins = sorted({int(m.group(1)) for k in keys if (m := re.match(r"ppseg_head\.cm\.stages\.(\d+)\.", k))})
    if not arms:
        raise ArchitectureError(f"{source}: no ppseg_head.arm_list tensors (UAFMs); is this a PP-LiteSeg checkpoint?")
    kwargs: dict[str, Any] = {
        "num_classes": shape("seg_heads.0.conv_out.weight")[0],
        "arm_out_chs": [shape(f"ppseg_head.arm_list.{i}.conv_out._conv.weight")[0] for i in arms],
        "cm_out_ch": shape("ppseg_head.cm.conv_out._conv.weight")[0],
        "arm_type": _arm_type(state, arms[0], source),
    }
    base = shape("backbone.features.1.conv.weight")[0]
    if base != 64:
        kwargs["backbone_kwargs"] = {"base": base}
    if len(bins) != 3:
        kwargs["cm_bin_sizes"] = [1, 2, 4, 8, 16][: len(bins)]  # bin sizes are not stored; PaddleSeg's pattern
    if len(heads) == len(arms):
        kwargs["seg_head_inter_chs"] = [shape(f"seg_heads.{i}.conv._conv.weight")[0] for i in heads]
    else:  # inference models keep only seg_heads.0: aux widths from the variant defaults
        kwargs["seg_head_inter_chs"] = [shape("seg_heads.0.conv._conv.weight")[0], 64, 64]
    return arch, kwargs


def _shape(state: Mapping[str, Any], key: str, source: str, ndim: int = 0) -> tuple[int, ...]:
    """Shape of ``state[key]``, which must exist and have at least one (or exactly ``ndim``) dimensions."""
    if key not in state:
        raise ArchitectureError(f"{source}: missing tensor {key!r}; is this a PP-LiteSeg checkpoint?")
    shape = tuple(getattr(state[key], "shape", ()))
    if not shape or (ndim and len(shape) != ndim):
        raise ArchitectureError(f"{source}: tensor {key!r} has shape {list(shape)}, which no PP-LiteSeg layer has")
    return shape


def _arm_type(state: Mapping[str, Any], i: int, source: str) -> str:
    prefix = f"ppseg_head.arm_list.{i}.conv_xy_atten.0._conv.weight"
    if prefix not in state:
        return "UAFM"
    out_ch, in_ch, kh, _ = _shape(state, prefix, source, ndim=4)
    y_ch = _shape(state, f"ppseg_head.arm_list.{i}.conv_x._conv.weight", source)[0]
    if kh == 3:
        return {4: "UAFM_SpAtten", 2: "UAFM_SpAtten_S"}.get(in_ch) or _unknown_arm(source, prefix, in_ch)
    return {4 * y_ch: "UAFM_ChAtten", 2 * y_ch: "UAFM_ChAtten_S"}.get(in_ch) or _unknown_arm(source, prefix, in_ch)


def _unknown_arm(source: str, key: str, in_ch: int) -> str:
    raise ArchitectureError(f"{source}: cannot tell the UAFM type from {key} with {in_ch} input channels")
