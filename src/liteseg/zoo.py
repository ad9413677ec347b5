"""Where weights come from: the model shipped in the package, and the fallbacks used until one is shipped."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .data.palettes import CAMVID_CLASSES, CAMVID_PALETTE
from .loading import LoadedModel, LoadReport, load
from .meta import ModelMeta
from .models.registry import build_model

log = logging.getLogger("liteseg")

ASSETS = Path(__file__).parent / "assets"
DEFAULT_WEIGHTS = ASSETS / "pp_liteseg_t_camvid.safetensors"
_FIXTURE = Path("fixtures") / "pp_liteseg_t" / "weights.pdparams"


def _shared_candidates() -> list[Path]:
    found = []
    if os.environ.get("LITESEG_SHARED"):
        found.append(Path(os.environ["LITESEG_SHARED"]))
    found.append(Path.cwd().parent / "shared")
    found.append(Path(__file__).resolve().parents[2].parent / "shared")  # beside a source checkout
    return found


def default_model() -> str | LoadedModel:
    """The shipped default model; until one is shipped, the best weights at hand, clearly marked untrained.

    Order: ``liteseg/assets/pp_liteseg_t_camvid.safetensors``; the random-weight PaddleSeg fixture in
    ``../shared`` (or ``$LITESEG_SHARED``); a seeded randomly initialised PP-LiteSeg-T with CamVid classes.
    """
    if DEFAULT_WEIGHTS.is_file():
        return str(DEFAULT_WEIGHTS)
    for shared in _shared_candidates():
        if (shared / _FIXTURE).is_file():
            loaded = load(shared / _FIXTURE)
            loaded.meta.trained = False
            log.warning("warning: no trained default model is shipped yet; using the random-weight PaddleSeg "
                        "fixture %s: outputs show the pipeline, not real segmentation", shared / _FIXTURE)
            return loaded
    torch.manual_seed(0)
    model = build_model("pp_liteseg_t", num_classes=len(CAMVID_CLASSES)).eval()
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=len(CAMVID_CLASSES), config=model.config,
                     class_names=list(CAMVID_CLASSES), palette=[list(c) for c in CAMVID_PALETTE],
                     source="random initialisation", trained=False)
    log.warning("warning: no trained default model is shipped yet and no reference weights were found; using a "
                "randomly initialised PP-LiteSeg-T: outputs show the pipeline, not real segmentation")
    return LoadedModel(model, meta, LoadReport())
