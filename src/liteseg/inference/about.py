"""One line that says what a model is for: "PP-LiteSeg-T, CamVid street scenes, 11 classes, 480x360"."""
from __future__ import annotations

from ..meta import ModelMeta
from ..palettes import CAMVID_CLASSES, CITYSCAPES_CLASSES
from .sizing import describe_size

ARCH_NAMES = {"pp_liteseg_t": "PP-LiteSeg-T", "pp_liteseg_b": "PP-LiteSeg-B"}
DOMAINS = {"camvid": "CamVid street scenes", "cityscapes": "Cityscapes street scenes"}
_CLASSES = {"camvid": CAMVID_CLASSES, "cityscapes": CITYSCAPES_CLASSES}


def domain(meta: ModelMeta) -> str:
    """The data the model was trained on, from its record or its class names; else its first class names."""
    dataset = meta.extra.get("dataset")
    if dataset in DOMAINS:
        return DOMAINS[dataset]
    for key, names in _CLASSES.items():
        if tuple(meta.class_names) == tuple(names):
            return DOMAINS[key]
    shown = ", ".join(meta.class_names[:4]) + (", ..." if len(meta.class_names) > 4 else "")
    return f"classes {shown}"


def describe(meta: ModelMeta) -> str:
    """``"PP-LiteSeg-T, CamVid street scenes, 11 classes, 480x360"`` (+ the shipped default, untrained)."""
    name = meta.extra.get("model_name") or ARCH_NAMES.get(meta.arch, meta.arch)
    size = describe_size(meta)
    parts = [str(name), domain(meta), f"{meta.num_classes} classes",
             size if size != "any size" else "runs at each image's size"]
    if meta.extra.get("shipped_default"):
        parts.append("the shipped default model")
    if not meta.trained:
        parts.append("untrained (random weights)")
    return ", ".join(parts)
