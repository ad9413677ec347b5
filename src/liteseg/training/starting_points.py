"""Where training starts: random init, ImageNet STDC weights (PaddleSeg ``PP_STDCNet1/2``), or a full model."""
from __future__ import annotations

import logging
import os
import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError
from ..formats.pdparams import normalize_paddle_keys, read_pdparams
from ..loading import LoadReport, create_model, load

log = logging.getLogger(__name__)


def load_backbone_pdparams(backbone: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load ImageNet STDC weights (PaddleSeg ``PP_STDCNet1/2`` .pdparams) into ``backbone`` by name and shape.

    Keys may come with or without a ``backbone.`` prefix; the classifier (``fc``, ``linear``, ``bn``...) and
    ``conv_last`` are ignored. Fails when nothing fits (wrong file, or STDC1 weights for an STDC2 model).
    """
    raw = read_pdparams(path)
    prefixed = {(k if k.startswith("backbone.") else f"backbone.{k}"): v for k, v in raw.items()}
    prefixed = {k: v for k, v in prefixed.items() if not k.startswith("backbone.conv_last.")}
    state = {k[len("backbone."):]: v for k, v in normalize_paddle_keys(prefixed, os.fspath(path)).items()}
    own = backbone.state_dict()
    report = LoadReport()
    new: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.ignored.append(key)
        elif tuple(np.shape(value)) != tuple(own[key].shape):
            report.ignored.append(f"{key} (file {list(np.shape(value))} vs model {list(own[key].shape)})")
        else:
            new[key] = torch.as_tensor(np.asarray(value)).to(own[key].dtype)
    report.kept_default = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
    if not new:
        raise ArchitectureError(f"{os.fspath(path)}: no tensor fits the {type(backbone).__name__} backbone "
                                f"(ignored: {', '.join(report.ignored[:3])}...); is this the right STDC variant?")
    with torch.no_grad():
        for key, tensor in new.items():
            own[key].copy_(tensor)
    report.loaded = len(new)
    return report


def build_train_model(name: str, num_classes: int, *, pretrained: str | None = None,
                      backbone_pretrained: str | None = None) -> tuple[nn.Module, list[str], str]:
    """The model to train, a human-readable account of what was loaded from where, and the licence of the starting
    weights (a fine-tuned model inherits it; empty for a random start or when the file names none)."""
    notes: list[str] = []
    license = ""
    if pretrained:
        loaded = load(pretrained, arch=name, num_classes=num_classes, reinit_head=True)
        model = loaded.model
        license = loaded.meta.license
        notes.append(f"model weights from {pretrained}: {loaded.report.summary()}"
                     + (f"; their licence ({license}) applies to the fine-tuned model" if license else ""))
    else:
        model = create_model(name, num_classes=num_classes)
        notes.append(f"{name}: random initialisation (PaddleSeg scheme), {num_classes} classes")
    if backbone_pretrained:
        report = load_backbone_pdparams(model.backbone, backbone_pretrained)
        notes.append(f"backbone weights from {backbone_pretrained}: {report.summary()}")
    return model.train(), notes, license
