"""Learning-rate schedule of PaddleSeg's recipes: linear warmup, then polynomial decay, stepped per iteration."""
from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

HORIZONS = ("total", "after_warmup")


def warmup_poly_lr(t: int, *, base_lr: float, iters: int, warmup_iters: int = 0, warmup_start_lr: float = 0.0,
                   power: float = 0.9, end_lr: float = 0.0, horizon: str = "total") -> float:
    """LR at 0-based iteration ``t``.

    Warmup (``t < warmup_iters``): ``warmup_start_lr + (base_lr - warmup_start_lr) * t / warmup_iters``.
    Then, with ``u = t - warmup_iters``: ``(base_lr - end_lr) * (1 - min(u, D) / D) ** power + end_lr``, where
    the horizon ``D`` is ``iters`` ("total", PaddleSeg release/2.5, which trained the published weights) or
    ``iters - warmup_iters`` ("after_warmup", PaddleSeg 2.8; the LR reaches ``end_lr``).
    """
    if horizon not in HORIZONS:
        raise ValueError(f"unknown poly horizon {horizon!r}; use one of {HORIZONS}")
    if t < warmup_iters:
        return warmup_start_lr + (base_lr - warmup_start_lr) * t / warmup_iters
    decay = iters if horizon == "total" else iters - warmup_iters
    if decay <= 0:
        return end_lr
    u = min(t - warmup_iters, decay)
    return (base_lr - end_lr) * (1.0 - u / decay) ** power + end_lr


class WarmupPolyLR(LRScheduler):
    """:func:`warmup_poly_lr` as a PyTorch scheduler; call ``step()`` once per iteration."""

    def __init__(self, optimizer: Optimizer, *, iters: int, warmup_iters: int = 0, warmup_start_lr: float = 0.0,
                 power: float = 0.9, end_lr: float = 0.0, horizon: str = "total", last_epoch: int = -1) -> None:
        if horizon not in HORIZONS:
            raise ValueError(f"unknown poly horizon {horizon!r}; use one of {HORIZONS}")
        self.iters = iters
        self.warmup_iters = warmup_iters
        self.warmup_start_lr = warmup_start_lr
        self.power = power
        self.end_lr = end_lr
        self.horizon = horizon
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [warmup_poly_lr(self.last_epoch, base_lr=base, iters=self.iters, warmup_iters=self.warmup_iters,
                               warmup_start_lr=self.warmup_start_lr, power=self.power, end_lr=self.end_lr,
                               horizon=self.horizon) for base in self.base_lrs]
