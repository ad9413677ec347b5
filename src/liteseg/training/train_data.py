"""The data a training run reads and what it learns from it: the train/val datasets, the check of the training
masks, automatic class weights, and what the model's record says about the classes and the input size."""
from __future__ import annotations

import logging
from typing import Any

from ..config import Config
from ..data import dataset_options, has_custom_classes
from ..data.check import ALLOWABLE, DataReport, auto_class_weights, scan_dataset
from .distributed import DistInfo
from .errors import TrainingError

log = logging.getLogger(__name__)


def build_datasets(config: Config, train_set: Any = None, val_set: Any = None) -> tuple[Any, Any]:
    """The datasets ``data`` names, unless given; the val set (with ``train.eval_interval`` > 0) is validated."""
    from ..data import build_dataset

    d = config.data
    unknown = sorted(set(d.allow) - set(ALLOWABLE))
    if unknown:
        raise TrainingError(f"data.allow takes {', '.join(ALLOWABLE)}, not {unknown} (unusable samples: "
                            f"data.skip_bad=true; warnings never stop training)")
    if train_set is None:
        train_set = build_dataset(d.train, split=d.train_split, **dataset_options(d, d.train))
    if val_set is None and config.train.eval_interval > 0:
        val_set = build_dataset(d.val or d.train, split=d.val_split, **dataset_options(d, d.val or d.train))
        if d.val_limit:
            val_set.samples = val_set.samples[:d.val_limit]
        val_set.validate(skip_bad=d.skip_bad)
    return train_set, val_set


def check_training_data(config: Config, train_set: Any, dist: DistInfo) -> DataReport:
    """Scan the training masks (statistics and classic mistakes); stop on a fatal finding not in data.allow."""
    d = config.data
    report = scan_dataset(train_set)
    if dist.is_main:
        log.info("%s", report.format())
    fatal = report.fatal([*d.allow, *(["bad_samples"] if d.skip_bad else [])])
    if fatal:
        codes = ", ".join(f.code for f in fatal if f.code in ALLOWABLE)
        anyway = f", or train anyway with data.allow=[{codes}]" if codes else ""
        raise TrainingError("training stopped: the training data would make it meaningless or wrong:\n"
                            + "\n".join(f"  [{f.code}] {f.message}" for f in fatal)
                            + f"\nFix the data (liteseg data check {d.train} shows the details){anyway}")
    train_set.validate(skip_bad=d.skip_bad)
    return report


def class_count(config: Config, train_set: Any) -> int:
    """``model.num_classes``, or the training data's; they must agree."""
    num_classes = config.model.num_classes or train_set.num_classes
    if num_classes != train_set.num_classes:
        raise TrainingError(f"model.num_classes={num_classes} but the training data has "
                            f"{train_set.num_classes} classes")
    return num_classes


def class_weights(config: Config, train_set: Any, report: DataReport | None, dist: DistInfo,
                  num_classes: int) -> list[float] | None:
    """``loss.class_weights`` (``auto``: from the class histogram of the training data), one per class."""
    weights = config.loss.class_weights
    if weights == "auto":
        if report is None:
            raise TrainingError("loss.class_weights=auto needs the class histogram of the training data, which is "
                                "computed for datasets named in data.train only")
        weights = auto_class_weights(report.pixels)
        if dist.is_main:
            log.info("loss.class_weights=auto: w_c = 1/ln(1.02 + p_c), p_c = share of class c among the labelled "
                     "training pixels, scaled to a pixel-weighted mean of 1: %s",
                     ", ".join(f"{n} {w:.3g}" for n, w in zip(train_set.class_names, weights)))
    if weights is not None and len(weights) != num_classes:
        raise TrainingError(f"loss.class_weights has {len(weights)} values for {num_classes} classes "
                            f"({', '.join(train_set.class_names[:4])}, ...); give one weight per class")
    return weights


def uncoloured_classes(config: Config, num_classes: int) -> list[int]:
    """Classes overlays leave as the image: data.uncoloured, else the background (0) of custom data."""
    chosen = config.data.uncoloured
    if chosen is None:
        return [0] if has_custom_classes(config.data.train) else []
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise TrainingError(f"data.uncoloured names classes {bad} outside 0-{num_classes - 1}")
    return list(chosen)


def validated_input_size(val_set: Any, scale: float) -> dict[str, list[int]]:
    """``{"input_size": [H, W]}``: the size the model is validated at (the first val image at ``data.val_scale``),
    which predict and serve then use; {} without validation data or a readable first image."""
    samples = getattr(val_set, "samples", None)
    if not samples:
        return {}
    try:
        from PIL import Image

        with Image.open(samples[0].image) as im:
            w, h = im.size
    except (OSError, ValueError):
        return {}
    return {"input_size": [int(h * scale + 0.5), int(w * scale + 0.5)]}
