"""SPPM: PaddleSeg's ``PPContextModule`` (pyramid pooling summed, no concat, no shortcut)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ConvBNReLU


def _bin_matrix(size: torch.Tensor | int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """``P[i, h] = 1/(e_i - s_i)`` on bin i's rows ``[floor(i*H/k), ceil((i+1)*H/k))``, else 0."""
    idx = torch.arange(bins, device=like.device).unsqueeze(1)
    pos = torch.arange(size, device=like.device).unsqueeze(0)
    # operands are >= 0, so truncation is floor division; it exports as one Div (floor adds a sign fix-up: 6 nodes)
    start = torch.div(idx * size, bins, rounding_mode="trunc")
    end = torch.div((idx + 1) * size + bins - 1, bins, rounding_mode="trunc")
    inside = (pos >= start) & (pos < end)
    return inside.to(like.dtype) / (end - start).to(like.dtype)


def adaptive_avg_pool2d_matmul(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Adaptive average pooling as ``P_h @ x @ P_w^T``: exact for every H, W and exportable with dynamic shapes.

    Bins are PyTorch's/Paddle's (they may overlap); bin count 1 is a plain mean.
    """
    if bins == 1:
        return x.mean(dim=(2, 3), keepdim=True)
    p_h = _bin_matrix(x.shape[2], bins, x)
    p_w = _bin_matrix(x.shape[3], bins, x)
    return torch.matmul(torch.matmul(p_h, x), p_w.transpose(0, 1))


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling that switches to the matmul form when asked (dynamic-shape export).

    ``mode``: ``"native"`` (``F.adaptive_avg_pool2d``; a fixed-shape export gives Global/AveragePool) or
    ``"matmul"`` (:func:`adaptive_avg_pool2d_matmul`). Both give the same numbers up to float rounding.
    """

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.mode = "native"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "matmul":
            return adaptive_avg_pool2d_matmul(x, self.bins)
        return F.adaptive_avg_pool2d(x, self.bins)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, mode={self.mode}"


class SPPM(nn.Module):
    """Simple Pyramid Pooling Module: ``conv_out(sum_j resize(stage_j(x)))``.

    ``stages.j`` = (adaptive pool to ``bin_sizes[j]``, 1x1 ConvBNReLU with bias); ``conv_out`` = 3x3 ConvBNReLU.
    """

    def __init__(self, in_ch: int, inter_ch: int, out_ch: int, bin_sizes: tuple[int, ...] = (1, 2, 4),
                 align_corners: bool = False) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            [nn.Sequential(AdaptiveAvgPool(b), ConvBNReLU(in_ch, inter_ch, 1)) for b in bin_sizes]
        )
        self.conv_out = ConvBNReLU(inter_ch, out_ch, 3, padding=1)
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        out = None
        for stage in self.stages:
            y = F.interpolate(stage(x), size, mode="bilinear", align_corners=self.align_corners)
            out = y if out is None else out + y
        return self.conv_out(out)
