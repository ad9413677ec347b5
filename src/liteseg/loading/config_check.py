"""Model configs read from files are checked before any layer is built: known keys, types, ranges, tensor shapes.

A model file's metadata decides how large a model ``build_model`` allocates (a 204-byte file asking for
``num_classes: 50000000`` took 23.7 GB), so every value is bounded here and compared with the weights it ships.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import FormatError
from ..models.heads import UAFM_TYPES
from ..models.registry import list_models
from ..models.stdc import BACKBONES

_MAX_CLASSES = 65536
_MAX_CHANNELS = 4096
_RESIZE_MODES = ("bilinear", "nearest", "bicubic", "area")

# key -> (kind, low, high, allowed strings); kinds: int, ints (a list of ints), str, bool
_TOP: dict[str, tuple[str, int, int, tuple[str, ...]]] = {
    "num_classes": ("int", 1, _MAX_CLASSES, ()),
    "backbone": ("str", 0, 0, tuple(BACKBONES)),
    "backbone_indices": ("ints", 0, 4, ()),
    "arm_type": ("str", 0, 0, tuple(UAFM_TYPES)),
    "cm_bin_sizes": ("ints", 1, 64, ()),
    "cm_out_ch": ("int", 1, _MAX_CHANNELS, ()),
    "arm_out_chs": ("ints", 1, _MAX_CHANNELS, ()),
    "seg_head_inter_chs": ("ints", 1, _MAX_CHANNELS, ()),
    "resize_mode": ("str", 0, 0, _RESIZE_MODES),
    "return_list": ("bool", 0, 0, ()),
}
_BACKBONE: dict[str, tuple[str, int, int, tuple[str, ...]]] = {
    "base": ("int", 2, 1024, ()),
    "layers": ("ints", 1, 32, ()),
    "block_num": ("int", 2, 16, ()),
    "type": ("str", 0, 0, ("cat", "add")),
    "in_channels": ("int", 1, 64, ()),
}
_MAX_LIST = 8


def check_config(arch: str, config: Mapping[str, Any], state: Mapping[str, Any], source: str) -> None:
    """Raise :class:`FormatError` naming the key if ``config`` is not a PP-LiteSeg config that fits ``state``."""
    if arch not in list_models():
        raise _error(source, "arch", f"is {arch!r}; known architectures: {', '.join(list_models())}")
    _check_keys(config, _TOP, "config", source, extra=("backbone_kwargs",))
    backbone_kwargs = config.get("backbone_kwargs") or {}
    if not isinstance(backbone_kwargs, Mapping):
        raise _error(source, "config.backbone_kwargs", "must be an object")
    _check_keys(backbone_kwargs, _BACKBONE, "config.backbone_kwargs", source)
    _check_shape(state, "seg_heads.0.conv_out.weight", 0, config.get("num_classes"), "config.num_classes", source)
    base = backbone_kwargs.get("base")
    _check_shape(state, "backbone.features.0.conv.weight", 0, None if base is None else base // 2,
                 "config.backbone_kwargs.base", source)
    _check_shape(state, "backbone.features.0.conv.weight", 1, backbone_kwargs.get("in_channels"),
                 "config.backbone_kwargs.in_channels", source)


def _check_keys(config: Mapping[str, Any], spec: dict[str, tuple[str, int, int, tuple[str, ...]]], where: str,
                source: str, extra: tuple[str, ...] = ()) -> None:
    for key, value in config.items():
        name = f"{where}.{key}"
        if key not in spec:
            if key in extra:
                continue
            raise _error(source, name, f"is not a known setting (known: {', '.join(sorted([*spec, *extra]))})")
        kind, low, high, choices = spec[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise _error(source, name, f"must be true or false, not {value!r}")
        elif kind == "str":
            if value not in choices:
                raise _error(source, name, f"is {value!r}; choose one of {', '.join(choices)}")
        else:
            values = value if kind == "ints" else [value]
            if kind == "ints" and (not isinstance(value, list) or not 1 <= len(value) <= _MAX_LIST):
                raise _error(source, name, f"must be a list of 1 to {_MAX_LIST} integers, not {value!r}")
            for v in values:
                if type(v) is not int or not low <= v <= high:
                    raise _error(source, name, f"is {value!r}; each value must be an integer from {low} to {high}")


def _check_shape(state: Mapping[str, Any], key: str, dim: int, expected: int | None, name: str, source: str) -> None:
    tensor = state.get(key)
    if expected is None or tensor is None or len(tensor.shape) <= dim:
        return
    if int(tensor.shape[dim]) != expected:
        raise _error(source, name, f"says {expected}, but the weights' {key} has {int(tensor.shape[dim])} "
                                   f"(dimension {dim})")


def _error(source: str, name: str, problem: str) -> FormatError:
    return FormatError(f"{source}: the model config is invalid: {name} {problem}; re-convert or re-export the file")
