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


# Attribute names of the conv and the batch norm: PaddleSeg's ``layers`` use these; STDC's own block ``conv``, ``bn``.
PADDLESEG_NAMES = ("_conv", "_batch_norm")
STDC_NAMES = ("conv", "bn")


class ConvBN(nn.Module):
    """PaddleSeg ``layers.ConvBN``: conv then batch norm, no activation; ``names`` are the two attribute names."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, stride: int = 1,
                 bias: bool = True, names: tuple[str, str] = PADDLESEG_NAMES) -> None:
        super().__init__()
        self._names = names
        setattr(self, names[0], nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=bias))
        setattr(self, names[1], batch_norm(out_ch))

    def conv_bn(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self._names[1])(getattr(self, self._names[0])(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_bn(x)


class ConvBNReLU(ConvBN):
    """PaddleSeg ``layers.ConvBNReLU`` (and, with ``names=STDC_NAMES``, STDC's ``ConvBNRelu``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv_bn(x))


class ConvBNLeakyReLU(ConvBN):
    """PaddleSeg ``layers.ConvBNAct(act_type='leakyrelu')`` (slope 0.01; the activation has no weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(self.conv_bn(x), 0.01)


def paddle_conv_init(conv: nn.Conv2d, std: float | None = None) -> None:
    """Paddle's default conv init: W ~ N(0, sqrt(2 / (kh*kw*in_channels))) (or N(0, ``std``)), bias 0.

    Paddle's fan-in uses ``in_channels`` (not ``in_channels / groups``), unlike PyTorch's Kaiming-uniform.
    """
    kh, kw = conv.kernel_size
    nn.init.normal_(conv.weight, 0.0, std if std is not None else math.sqrt(2.0 / (kh * kw * conv.in_channels)))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def paddle_default_init(module: nn.Module, conv_std: float | None = None) -> None:
    """Re-initialise like Paddle's defaults: convs as :func:`paddle_conv_init`, BN weight 1, bias 0, fresh stats."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            paddle_conv_init(m, conv_std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
