"""Segmentation losses with PaddleSeg's semantics: OHEM cross-entropy, plain cross-entropy, multi-head sum."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..config import LossConfig
from ..registry import Registry

_EPS = 1e-5


class OhemCrossEntropyLoss(nn.Module):
    """PaddleSeg ``OhemCrossEntropyLoss`` (SPEC 6.2), computed over all pixels of the (local) batch.

    The probability of the ground-truth class decides which pixels are kept: if more than ``min_kept`` pixels
    are valid and ``min_kept > 0``, the threshold is ``max(sorted_p[min_kept - 1], thresh)`` and pixels with
    ``p < threshold`` are kept; otherwise (``min_kept <= 0`` included) every valid pixel is kept, i.e. plain
    cross-entropy. The loss is ``mean(CE * w_y * keep) / (mean(keep) + 1e-5)`` (``w`` = 1 unless ``weight``,
    one per class, is given; unlike CrossEntropyLoss the denominator is not weighted). No gradient flows through
    the selection. All as in PaddleSeg's ``ohem_cross_entropy_loss.py``.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int = 10000, ignore_index: int = 255,
                 weight: Sequence[float] | None = None) -> None:
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise ValueError(f"OHEM thresh must be in (0, 1], got {thresh}")
        self.thresh = thresh
        self.min_kept = min_kept
        self.ignore_index = ignore_index
        self.register_buffer("weight", _class_weights(weight), persistent=False)

    def keep_mask(self, logits: torch.Tensor, label: torch.Tensor,
                  log_probs: torch.Tensor | None = None) -> torch.Tensor:
        """Float mask ``[N, H, W]`` of the pixels that enter the loss (``log_probs``: log-softmax of the logits,
        when the caller has it already)."""
        with torch.no_grad():
            valid = label != self.ignore_index
            n_valid = int(valid.sum())
            if n_valid == 0 or self.min_kept >= n_valid or self.min_kept <= 0:
                return valid.float()
            target = torch.where(valid, label, torch.zeros_like(label)).long()
            if log_probs is None:
                log_probs = torch.log_softmax(logits.detach().float(), dim=1)
            prob = log_probs.detach().gather(1, target.unsqueeze(1)).squeeze(1).exp()
            prob = torch.where(valid, prob, torch.ones_like(prob) + 1.0)  # ignored pixels sort last
            threshold = self.thresh
            # max(sorted_p[min_kept - 1], thresh) is thresh whenever min_kept pixels are already below thresh;
            # otherwise a linear-time selection finds the k-th value (a full sort costs ~10x more).
            if int((prob < self.thresh).sum()) < self.min_kept:
                kth = torch.kthvalue(prob.flatten(), self.min_kept).values
                threshold = max(float(kth), self.thresh)
            return (valid & (prob < threshold)).float()

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        # one log-softmax serves the selection and the cross-entropy (a separate softmax cost ~8% of a CPU step)
        log_probs = torch.log_softmax(logits.float(), dim=1)
        return _masked_mean_ce(log_probs, label, self.keep_mask(logits, label, log_probs), self.weight,
                               weighted_mean=False)


class CrossEntropyLoss(nn.Module):
    """PaddleSeg ``CrossEntropyLoss``: ``mean(CE * valid * w_y) / (mean(valid * w_y) + 1e-5)`` (``w`` = 1 unless
    ``weight``, one per class, is given)."""

    def __init__(self, ignore_index: int = 255, weight: Sequence[float] | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", _class_weights(weight), persistent=False)

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return _masked_mean_ce(torch.log_softmax(logits.float(), dim=1), label, (label != self.ignore_index).float(),
                               self.weight)


def _class_weights(weight: Sequence[float] | None) -> torch.Tensor | None:
    if weight is None:
        return None
    w = torch.as_tensor([float(v) for v in weight], dtype=torch.float32)
    if w.ndim != 1 or len(w) == 0 or not bool((w > 0).all()):
        raise ValueError(f"class weights must be a non-empty list of positive numbers, got {list(weight)}")
    return w


def _masked_mean_ce(log_probs: torch.Tensor, label: torch.Tensor, mask: torch.Tensor,
                    weight: torch.Tensor | None, weighted_mean: bool = True) -> torch.Tensor:
    """``mean(CE * mask * w_y) / (mean(mask * w_y) + 1e-5)`` over the pixels where ``mask`` is set (the
    denominator without ``w_y`` unless ``weighted_mean``).

    ``log_probs`` is the float32 log-softmax of the logits: ``nll_loss`` of it is exactly ``cross_entropy``.
    """
    target = torch.where(mask > 0, label.long(), torch.zeros_like(label, dtype=torch.long))
    norm = mask
    if weight is not None:
        if weight.numel() != log_probs.shape[1]:
            raise ValueError(f"{weight.numel()} class weights for a model with {log_probs.shape[1]} classes")
        mask = mask * weight.to(log_probs.device)[target]
        norm = mask if weighted_mean else norm
    ce = F.nll_loss(log_probs, target, reduction="none")
    return (ce * mask).mean() / (norm.mean() + _EPS)


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


def _ohem(config: LossConfig, ignore_index: int, weight: Sequence[float] | None) -> nn.Module:
    return OhemCrossEntropyLoss(config.thresh, config.min_kept, ignore_index, weight)


def _ce(config: LossConfig, ignore_index: int, weight: Sequence[float] | None) -> nn.Module:
    return CrossEntropyLoss(ignore_index, weight)


# loss.type -> builder(loss config, ignore index, class weights); a new loss is its class plus one line here (and
# its name in config.LOSS_TYPES, which validates configs before torch is imported)
LOSSES: Registry[Callable[[LossConfig, int, Sequence[float] | None], nn.Module]] = Registry("loss")
LOSSES.add("ohem", _ohem)
LOSSES.add("ce", _ce)


def build_loss(config: LossConfig, ignore_index: int = 255, weight: Sequence[float] | None = None) -> nn.Module:
    """The per-output loss ``config.type`` names in :data:`LOSSES` (``weight``: one per class, or None)."""
    return LOSSES.get(config.type)(config, ignore_index, weight)
