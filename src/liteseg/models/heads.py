"""FLD decoder (``PPLiteSegHead``: SPPM + a UAFM per level) and the segmentation heads."""
from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNReLU
from .sppm import SPPM
from .uafm import UAFM_TYPES


class PPLiteSegHead(nn.Module):
    """Flexible Lightweight Decoder: ``h = cm(f_last)``, then ``h = arm_list[i](f_i, h)`` for i from last to 0.

    Returns the fused features ordered from highest resolution (stride 8) to lowest.
    """

    def __init__(self, backbone_out_chs: list[int], arm_out_chs: list[int], cm_bin_sizes: list[int],
                 cm_out_ch: int, arm_type: str, resize_mode: str) -> None:
        super().__init__()
        if arm_type not in UAFM_TYPES:
            raise ValueError(f"unknown arm_type {arm_type!r}; choose one of {sorted(UAFM_TYPES)}")
        self.cm = SPPM(backbone_out_chs[-1], cm_out_ch, cm_out_ch, tuple(cm_bin_sizes))
        arm = UAFM_TYPES[arm_type]
        n = len(backbone_out_chs)
        self.arm_list = nn.ModuleList([
            arm(backbone_out_chs[i], cm_out_ch if i == n - 1 else arm_out_chs[i + 1], arm_out_chs[i],
                ksize=3, resize_mode=resize_mode)
            for i in range(n)
        ])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        high = self.cm(feats[-1])
        outs: list[torch.Tensor] = []
        for i in reversed(range(len(feats))):
            high = self.arm_list[i](feats[i], high)
            outs.insert(0, high)
        return outs


class SegHead(nn.Module):
    """3x3 ConvBNReLU then a bare, bias-free 1x1 classifier ``conv_out``."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch, 3, padding=1, bias=False)
        self.conv_out = nn.Conv2d(mid_ch, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))
