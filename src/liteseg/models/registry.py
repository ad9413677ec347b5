"""Model registry: ``@register_model`` entrypoints (the generic :class:`~liteseg.registry.Registry`),
``build_model`` and ``list_models`` (timm style)."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ..registry import Registry, did_you_mean

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", error=ValueError)


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model entrypoint under its function name."""
    return MODELS.register()(fn)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered architectures matching a shell-style ``pattern``."""
    return sorted(MODELS.names(pattern))


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The entrypoint of a registered model; a clear error suggests the close names otherwise."""
    if name in MODELS:
        return MODELS.get(name)
    arch = name.split(".")[0]
    hint = (f"{name!r} names weights: create_model({name!r}, pretrained=True) loads them" if arch in MODELS else
            did_you_mean(name, list_models()))
    raise ValueError(f"unknown model {name!r}; {hint}")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model with randomly initialised (PaddleSeg-style) weights."""
    return model_entrypoint(name)(**kwargs)
