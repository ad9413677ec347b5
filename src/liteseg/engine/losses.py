"""Segmentation losses with PaddleSeg's semantics: OHEM cross-entropy, plain cross-entropy, multi-head sum."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

_EPS = 1e-5


class OhemCrossEntropyLoss(nn.Module):
    """PaddleSeg ``OhemCrossEntropyLoss`` (SPEC 6.2), computed over all pixels of the (local) batch.

    The probability of the ground-truth class decides which pixels are kept: if more than ``min_kept`` pixels
    are valid, the threshold is ``max(sorted_p[min_kept - 1], thresh)`` and pixels with ``p < threshold`` are
    kept; otherwise every valid pixel is kept. The loss is ``mean(CE * keep) / (mean(keep) + 1e-5)``.
    No gradient flows through the selection.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int = 10000, ignore_index: int = 255) -> None:
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise ValueError(f"OHEM thresh must be in (0, 1], got {thresh}")
        if min_kept < 0:
            raise ValueError(f"OHEM min_kept must be >= 0, got {min_kept}")
        self.thresh = thresh
        self.min_kept = min_kept
        self.ignore_index = ignore_index

    def keep_mask(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Float mask ``[N, H, W]`` of the pixels that enter the loss."""
        with torch.no_grad():
            valid = label != self.ignore_index
            n_valid = int(valid.sum())
            if n_valid == 0 or self.min_kept >= n_valid:
                return valid.float()
            target = torch.where(valid, label, torch.zeros_like(label)).long()
            prob = torch.softmax(logits.detach().float(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
            prob = torch.where(valid, prob, torch.ones_like(prob) + 1.0)  # ignored pixels sort last
            threshold = self.thresh
            # max(sorted_p[min_kept - 1], thresh) is thresh whenever min_kept pixels are already below thresh;
            # otherwise a linear-time selection finds the k-th value (a full sort costs ~10x more).
            if self.min_kept > 0 and int((prob < self.thresh).sum()) < self.min_kept:
                kth = torch.kthvalue(prob.flatten(), self.min_kept).values
                threshold = max(float(kth), self.thresh)
            return (valid & (prob < threshold)).float()

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        keep = self.keep_mask(logits, label)
        target = torch.where(keep > 0, label.long(), torch.zeros_like(label, dtype=torch.long))
        ce = F.cross_entropy(logits.float(), target, reduction="none")
        return (ce * keep).mean() / (keep.mean() + _EPS)


class CrossEntropyLoss(nn.Module):
    """PaddleSeg ``CrossEntropyLoss`` (no class weights): ``mean(CE * valid) / (mean(valid) + 1e-5)``."""

    def __init__(self, ignore_index: int = 255) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        valid = (label != self.ignore_index).float()
        target = torch.where(valid > 0, label.long(), torch.zeros_like(label, dtype=torch.long))
        ce = F.cross_entropy(logits.float(), target, reduction="none")
        return (ce * valid).mean() / (valid.mean() + _EPS)


class MultiHeadLoss(nn.Module):
    """Weighted sum of one loss per model output (main, 1/16 aux, 1/32 aux); returns the total and the terms."""

    def __init__(self, loss: nn.Module, coefs: Sequence[float]) -> None:
        super().__init__()
        self.loss = loss
        self.coefs = [float(c) for c in coefs]

    def forward(self, outputs: Sequence[torch.Tensor], label: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if len(outputs) != len(self.coefs):
            raise ValueError(f"the model returned {len(outputs)} outputs but {len(self.coefs)} loss coefficients "
                             f"are configured (loss.coefs)")
        terms = [self.loss(out, label) for out in outputs]
        total = sum(c * t for c, t in zip(self.coefs, terms))
        return total, terms
