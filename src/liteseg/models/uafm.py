"""UAFM (Unified Attention Fusion Module) family, as PaddleSeg defines it.

All variants fuse a low-level feature ``x`` (higher resolution) with a high-level feature ``y``:
``x' = conv_x(x)``, ``y' = resize(y, size(x'))``, ``out = conv_out(fuse(x', y'))``. The attention weight
alpha multiplies ``x'`` (as in PaddleSeg's code; the paper's equation puts it on ``y'``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ConvBN, ConvBNLeakyReLU, ConvBNReLU


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


class UAFM(nn.Module):
    """Base UAFM: ``conv_out(x' + y')``."""

    def __init__(self, x_ch: int, y_ch: int, out_ch: int, ksize: int = 3, resize_mode: str = "bilinear") -> None:
        super().__init__()
        self.conv_x = ConvBNReLU(x_ch, y_ch, ksize, padding=ksize // 2, bias=False)
        self.conv_out = ConvBNReLU(y_ch, out_ch, 3, padding=1, bias=False)
        self.resize_mode = resize_mode

    def _resize(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.resize_mode in ("bilinear", "bicubic", "linear", "trilinear"):
            return F.interpolate(y, like.shape[2:], mode=self.resize_mode, align_corners=False)
        return F.interpolate(y, like.shape[2:], mode=self.resize_mode)

    def fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not _tracing() and (x.shape[2] < y.shape[2] or x.shape[3] < y.shape[3]):
            raise ValueError(
                f"UAFM expects the low-level feature to be at least as large as the high-level one, "
                f"got {tuple(x.shape[2:])} < {tuple(y.shape[2:])}"
            )
        x = self.conv_x(x)
        y = self._resize(y, x)
        return self.conv_out(self.fuse(x, y))


class UAFM_SpAtten(UAFM):
    """Spatial attention from channel mean/max of x' and y' (the PP-LiteSeg default).

    ``_scale`` (PaddleSeg >= 2.7) is a frozen parameter, 1.0 unless loaded: ``x'*a + y'*(_scale - a)``.
    """

    def __init__(self, x_ch: int, y_ch: int, out_ch: int, ksize: int = 3, resize_mode: str = "bilinear") -> None:
        super().__init__(x_ch, y_ch, out_ch, ksize, resize_mode)
        self._scale = nn.Parameter(torch.ones(1), requires_grad=False)
        self.conv_xy_atten = nn.Sequential(ConvBNReLU(4, 2, 3, padding=1, bias=False),
                                           ConvBN(2, 1, 3, padding=1, bias=False))

    def fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atten = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True),
                           y.mean(1, keepdim=True), y.amax(1, keepdim=True)], dim=1)
        atten = torch.sigmoid(self.conv_xy_atten(atten))
        return x * atten + y * (self._scale - atten)


class UAFM_SpAtten_S(UAFM):
    """Spatial attention from channel means only: ``x'*a + y'*(1 - a)``."""

    def __init__(self, x_ch: int, y_ch: int, out_ch: int, ksize: int = 3, resize_mode: str = "bilinear") -> None:
        super().__init__(x_ch, y_ch, out_ch, ksize, resize_mode)
        self.conv_xy_atten = nn.Sequential(ConvBNReLU(2, 2, 3, padding=1, bias=False),
                                           ConvBN(2, 1, 3, padding=1, bias=False))

    def fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atten = torch.cat([x.mean(1, keepdim=True), y.mean(1, keepdim=True)], dim=1)
        atten = torch.sigmoid(self.conv_xy_atten(atten))
        return x * atten + y * (1 - atten)


class UAFM_ChAtten(UAFM):
    """Channel attention from global avg/max pools of x' and y'."""

    def __init__(self, x_ch: int, y_ch: int, out_ch: int, ksize: int = 3, resize_mode: str = "bilinear") -> None:
        super().__init__(x_ch, y_ch, out_ch, ksize, resize_mode)
        self.conv_xy_atten = nn.Sequential(ConvBNLeakyReLU(4 * y_ch, y_ch // 2, 1, bias=False),
                                           ConvBN(y_ch // 2, y_ch, 1, bias=False))

    def fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atten = torch.cat([x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True),
                           x.amax((2, 3), keepdim=True), y.amax((2, 3), keepdim=True)], dim=1)
        atten = torch.sigmoid(self.conv_xy_atten(atten))
        return x * atten + y * (1 - atten)


class UAFM_ChAtten_S(UAFM):
    """Channel attention from global average pools only."""

    def __init__(self, x_ch: int, y_ch: int, out_ch: int, ksize: int = 3, resize_mode: str = "bilinear") -> None:
        super().__init__(x_ch, y_ch, out_ch, ksize, resize_mode)
        self.conv_xy_atten = nn.Sequential(ConvBNLeakyReLU(2 * y_ch, y_ch // 2, 1, bias=False),
                                           ConvBN(y_ch // 2, y_ch, 1, bias=False))

    def fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atten = torch.cat([x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True)], dim=1)
        atten = torch.sigmoid(self.conv_xy_atten(atten))
        return x * atten + y * (1 - atten)


UAFM_TYPES: dict[str, type[UAFM]] = {
    "UAFM": UAFM,
    "UAFM_SpAtten": UAFM_SpAtten,
    "UAFM_SpAtten_S": UAFM_SpAtten_S,
    "UAFM_ChAtten": UAFM_ChAtten,
    "UAFM_ChAtten_S": UAFM_ChAtten_S,
}
