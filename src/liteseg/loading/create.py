"""timm-style model creation: ``create_model(NAME, pretrained=True)`` and ``list_models(pretrained=True)``, over
the architectures (:mod:`liteseg.models`) and the weight records (:mod:`liteseg.loading.zoo`)."""
from __future__ import annotations

import fnmatch
import logging
import os
from typing import Any

from torch import nn

from ..models.registry import build_model
from ..models.registry import list_models as list_architectures
from . import zoo
from .loader import load

log = logging.getLogger("liteseg")


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted architecture names matching the shell-style ``pattern``; with ``pretrained`` the ``arch.tag`` names
    of the weights :func:`create_model` can load (the shipped ones and PaddleSeg's published ones)."""
    if not pretrained:
        return list_architectures(pattern)
    return [name for name in zoo.list_weights() if fnmatch.fnmatch(name, pattern)]


def create_model(name: str, pretrained: bool = False, *, num_classes: int | None = None,
                 weights: str | os.PathLike | None = None, reinit_head: bool = False, **kwargs: Any) -> nn.Module:
    """Build a registered model (``liteseg.list_models()``), optionally with weights.

    ``pretrained=True`` loads the weights ``name`` names, timm style: ``"pp_liteseg_t.camvid"`` (shipped in the
    package), ``"pp_liteseg_b.cityscapes_1024x512_scale1.0"`` (PaddleSeg's, from ``$LITESEG_HOME/weights`` or
    downloaded; ``list_models(pretrained=True)`` lists them), or a bare architecture's default
    (:func:`~liteseg.loading.zoo.pretrained_name`). Without weights the model is randomly initialised the way
    PaddleSeg does it. With ``weights`` (any file ``liteseg.load`` accepts, or a weight name) the class count
    comes from the file unless ``num_classes`` and ``reinit_head`` ask for new classifiers; then what was loaded
    and what was re-initialised is logged (``model.load_report`` holds it). The model is returned in train mode,
    like any fresh nn.Module.
    """
    if pretrained:
        if weights is not None:
            raise ValueError("pass pretrained=True or weights=, not both")
        weights = zoo.pretrained_name(name)
        name = zoo.record(weights).arch
    if weights is None:
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        return build_model(name, **kwargs)
    if kwargs:
        raise ValueError(f"architecture arguments {sorted(kwargs)} cannot be combined with weights=; the "
                         f"architecture is read from the weights")
    loaded = load(weights, arch=name, num_classes=num_classes, reinit_head=reinit_head)
    loaded.model.meta, loaded.model.load_report = loaded.meta, loaded.report
    if reinit_head:  # what was kept and what is new, as the fine-tuning user needs to know
        log.warning("%s: %s", weights, loaded.report.summary())
    return loaded.model.train()
