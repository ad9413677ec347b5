"""Conv/BN building blocks with PaddleSeg's attribute names (``_conv``, ``_batch_norm``).

The attribute names are part of the weight layout: PaddleSeg state dicts map onto these modules
1:1 (only ``_mean``/``_variance`` become ``running_mean``/``running_var``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

# Paddle BatchNorm: eps 1e-5, momentum 0.9 (run = 0.9 run + 0.1 batch) == PyTorch momentum 0.1.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvBN(nn.Module):
    """PaddleSeg ``layers.ConvBN``: conv then batch norm, no activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, stride: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        self._conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=bias)
        self._batch_norm = batch_norm(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._batch_norm(self._conv(x))


class ConvBNReLU(ConvBN):
    """PaddleSeg ``layers.ConvBNReLU``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self._batch_norm(self._conv(x)))


class ConvBNLeakyReLU(ConvBN):
    """PaddleSeg ``layers.ConvBNAct(act_type='leakyrelu')`` (slope 0.01; the activation has no weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(self._batch_norm(self._conv(x)), 0.01)


def paddle_default_init(module: nn.Module) -> None:
    """Re-initialise like Paddle's defaults: conv W ~ N(0, sqrt(2 / (kh*kw*in_channels))), bias 0, BN 1/0.

    Paddle's fan-in uses ``in_channels`` (not ``in_channels / groups``), unlike PyTorch's Kaiming-uniform.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (kh * kw * m.in_channels)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
