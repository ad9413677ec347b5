"""Process-group helpers on top of ``torch.distributed`` (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``world_size == 1`` for plain single-process runs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str, backend: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op when WORLD_SIZE is unset or 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a small tensor over all processes (identity for single-process runs)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


class _AllReduceSum(torch.autograd.Function):
    """``dist.all_reduce`` (sum) that autograd differentiates: the gradient of every process's input is the sum of
    the output gradients of all processes (what the deprecated ``torch.distributed.nn.functional.all_reduce`` did,
    with the supported ``torch.distributed`` API only)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_sum_autograd(values: torch.Tensor) -> torch.Tensor:
    """The sum of ``values`` over all processes, differentiable (gradients are summed over processes too)."""
    return _AllReduceSum.apply(values)


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """Batch norm with statistics over all processes, for CPU (gloo) runs.

    ``nn.SyncBatchNorm`` only runs on accelerators; this module reduces per-channel sums, sums of squares and
    counts with an autograd-aware all-reduce (:func:`all_reduce_sum_autograd`) so that N processes normalise
    (and back-propagate) exactly like one process with the concatenated batch. Eval mode is plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        local = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)),
                           x.new_full((1,), x.numel() / c)])
        total = all_reduce_sum_autograd(local)
        count = total[-1]
        mean = total[:c] / count
        var = total[c:2 * c] / count - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1), alpha=m)
        scale = self.weight / torch.sqrt(var + self.eps)
        return x * scale.view(1, c, 1, 1) + (self.bias - mean * scale).view(1, c, 1, 1)


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """Every BatchNorm2d -> ``nn.SyncBatchNorm`` on accelerators, :class:`CPUSyncBatchNorm` on CPU."""
    if device_type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CPUSyncBatchNorm):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device_type))
    return module
