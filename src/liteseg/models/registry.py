"""Model registry: ``@register_model`` entrypoints, ``create_model`` and ``list_models`` (timm style)."""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model entrypoint under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The entrypoint of a registered model; a clear error lists the known names otherwise."""
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list_models(), n=2, cutoff=0.8)
        arch = name.split(".")[0]
        hint = (f"{name!r} names weights: create_model({arch!r}, weights={name!r})" if arch in _MODELS else
                f"did you mean {' or '.join(map(repr, close))}?" if close else
                f"registered models: {', '.join(list_models())}")
        raise ValueError(f"unknown model {name!r}; {hint}") from None


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model with randomly initialised (PaddleSeg-style) weights."""
    return model_entrypoint(name)(**kwargs)
