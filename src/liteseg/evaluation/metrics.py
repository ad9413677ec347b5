"""Segmentation metrics accumulated over a whole dataset from an int64 confusion matrix, as PaddleSeg 2.8.0.

With ``P_c`` predicted, ``L_c`` labelled and ``I_c`` correct valid pixels of class c (pixels labelled
``ignore_index`` are left out): ``IoU_c = I/(P+L-I)``, ``Dice_c = 2I/(P+L)``, precision ``I/P``, recall ``I/L``
(each 0 when its denominator is 0), ``Acc = ΣI/ΣP``, Cohen's kappa in float64. Means are plain means over all
classes, so a class absent from both prediction and label counts as IoU 0 (the released 2.8.0 package);
``exclude_absent=True`` leaves such classes out of the means instead.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per element, 0 where den is 0."""
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


class SegMetrics:
    """Confusion-matrix accumulator: ``update(pred, label)`` per batch, ``compute()`` at the end.

    ``confusion[l, p]`` counts valid pixels with label l predicted as p; merge ranks with :meth:`merge` (or by
    summing ``confusion`` across processes).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, exclude_absent: bool = False) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.exclude_absent = exclude_absent
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.confusion[:] = 0

    def update(self, pred: Any, label: Any) -> None:
        """Add predictions and labels (integer arrays or tensors of one shape, any layout)."""
        pred, label = _flat(pred), _flat(label)
        if pred.shape != label.shape:
            raise ValueError(f"prediction has {pred.size} pixels but label has {label.size}; they must match")
        valid = label != self.ignore_index
        pred, label = pred[valid], label[valid]
        c = self.num_classes
        if label.size and (label.min() < 0 or label.max() >= c):
            bad = np.unique(label[(label < 0) | (label >= c)])[:10].tolist()
            raise ValueError(f"label values {bad} are neither classes 0-{c - 1} nor the ignore index "
                             f"{self.ignore_index}")
        if pred.size and (pred.min() < 0 or pred.max() >= c):
            bad = np.unique(pred[(pred < 0) | (pred >= c)])[:10].tolist()
            raise ValueError(f"predicted values {bad} are not classes 0-{c - 1}")
        self.confusion += np.bincount(label * c + pred, minlength=c * c).reshape(c, c)

    def merge(self, other: "SegMetrics") -> "SegMetrics":
        """Add another accumulator's counts (e.g. from another rank); returns self."""
        if other.confusion.shape != self.confusion.shape:
            raise ValueError(f"cannot merge metrics of {other.num_classes} classes into {self.num_classes}")
        self.confusion += other.confusion
        return self

    def compute(self) -> dict[str, Any]:
        """Metrics as plain Python numbers and lists (JSON-ready)."""
        cm = self.confusion
        intersect = np.diag(cm)
        pred_area = cm.sum(axis=0)
        label_area = cm.sum(axis=1)
        union = pred_area + label_area - intersect
        iou = _ratio(intersect, union)
        dice = _ratio(2 * intersect, pred_area + label_area)
        precision = _ratio(intersect, pred_area)
        recall = _ratio(intersect, label_area)
        present = union > 0
        mean_over = present if self.exclude_absent else np.ones(self.num_classes, dtype=bool)

        def mean(values: np.ndarray) -> float:
            return float(values[mean_over].mean()) if mean_over.any() else 0.0

        total = float(label_area.sum())
        acc = float(intersect.sum() / pred_area.sum()) if pred_area.sum() else 0.0
        kappa = 0.0
        if total:
            po = intersect.sum() / total
            pe = float(np.sum(pred_area.astype(np.float64) * label_area.astype(np.float64))) / (total * total)
            kappa = float((po - pe) / (1 - pe)) if pe != 1 else 0.0
        return {
            "miou": mean(iou), "acc": acc, "kappa": kappa, "mdice": mean(dice),
            "mean_precision": mean(precision), "mean_recall": mean(recall),
            "class_iou": iou.tolist(), "class_precision": precision.tolist(), "class_recall": recall.tolist(),
            "class_dice": dice.tolist(), "num_pixels": int(total),
            "absent_classes": np.flatnonzero(~present).tolist(), "exclude_absent": self.exclude_absent,
        }


def _flat(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"expected integer class indices, got {x.dtype} (apply argmax to logits first)")
    return x.reshape(-1).astype(np.int64, copy=False)
