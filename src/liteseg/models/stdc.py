"""STDC backbone (STDC1 / STDC2) with PaddleSeg's parameter names (``features.i.conv_list.j.conv``...)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import STDC_NAMES, ConvBNReLU, batch_norm, paddle_default_init


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> ConvBNReLU:
    """STDC's conv block: bias-free conv (padding k//2) and batch norm named ``conv``/``bn`` as in PaddleSeg."""
    return ConvBNReLU(in_ch, out_ch, kernel, padding=kernel // 2, stride=stride, bias=False, names=STDC_NAMES)


def _branch_channels(out_ch: int, block_num: int) -> list[tuple[int, int]]:
    """(in, out) channels of ``conv_list`` as PaddleSeg's CatBottleneck/AddBottleneck build them."""
    chans = [(0, out_ch // 2)]
    for idx in range(1, block_num):
        if idx == 1 and block_num == 2:
            chans.append((out_ch // 2, out_ch // 2))
        elif idx == 1:
            chans.append((out_ch // 2, out_ch // 4))
        elif idx < block_num - 1:
            chans.append((out_ch // 2 ** idx, out_ch // 2 ** (idx + 1)))
        else:
            chans.append((out_ch // 2 ** idx, out_ch // 2 ** idx))
    return chans


def _build_branches(block: nn.Module, in_ch: int, out_ch: int, block_num: int, stride: int) -> None:
    """Register ``conv_list`` (then, for stride 2, ``avd_layer``) on an STDC block, in PaddleSeg's order."""
    if block_num < 2:
        raise ValueError(f"block_num must be >= 2, got {block_num}")
    block.stride = stride
    chans = _branch_channels(out_ch, block_num)
    block.conv_list = nn.ModuleList(
        [conv_bn_relu(in_ch, chans[0][1], kernel=1)] + [conv_bn_relu(i, o) for i, o in chans[1:]]
    )
    if stride == 2:
        half = out_ch // 2
        block.avd_layer = nn.Sequential(
            nn.Conv2d(half, half, 3, stride=2, padding=1, groups=half, bias=False), batch_norm(half)
        )


class CatBottleneck(nn.Module):
    """STDC block: a chain of convs whose outputs are concatenated; stride 2 adds ``avd_layer`` and ``skip``."""

    def __init__(self, in_ch: int, out_ch: int, block_num: int = 4, stride: int = 1) -> None:
        super().__init__()
        _build_branches(self, in_ch, out_ch, block_num, stride)
        if stride == 2:
            self.skip = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.conv_list[0](x)
        out = self.avd_layer(first) if self.stride == 2 else first
        outs = []
        for conv in self.conv_list[1:]:
            out = conv(out)
            outs.append(out)
        if self.stride == 2:
            first = self.skip(first)
        return torch.cat([first, *outs], dim=1)


class AddBottleneck(nn.Module):
    """STDC ``type='add'`` block (unused by PP-LiteSeg, kept for ``STDCNet(type='add')``)."""

    def __init__(self, in_ch: int, out_ch: int, block_num: int = 4, stride: int = 1) -> None:
        super().__init__()
        _build_branches(self, in_ch, out_ch, block_num, stride)
        if stride == 2:
            self.skip = nn.Sequential(
                nn.Conv2d(in_ch, in_ch, 3, stride=2, padding=1, groups=in_ch, bias=False), batch_norm(in_ch),
                nn.Conv2d(in_ch, out_ch, 1, bias=False), batch_norm(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        outs = []
        for idx, conv in enumerate(self.conv_list):
            out = conv(out)
            if idx == 0 and self.stride == 2:
                out = self.avd_layer(out)
            outs.append(out)
        residual = self.skip(x) if self.stride == 2 else x
        return torch.cat(outs, dim=1) + residual


class STDCNet(nn.Module):
    """STDC feature extractor; ``forward`` returns the five maps at strides 2, 4, 8, 16, 32.

    Args mirror PaddleSeg's ``STDCNet``: ``base`` width, ``layers`` (blocks per stage), ``block_num`` (convs
    per block), ``type`` ('cat' or 'add') and ``in_channels``.
    """

    def __init__(self, base: int = 64, layers: tuple[int, ...] = (4, 5, 3), block_num: int = 4,
                 type: str = "cat", in_channels: int = 3) -> None:
        super().__init__()
        blocks = {"cat": CatBottleneck, "add": AddBottleneck}
        if type not in blocks:
            raise ValueError(f"STDCNet type must be 'cat' or 'add', got {type!r}")
        block = blocks[type]
        self.layers = list(layers)
        features: list[nn.Module] = [conv_bn_relu(in_channels, base // 2, 3, 2), conv_bn_relu(base // 2, base, 3, 2)]
        for i, n in enumerate(self.layers):
            for j in range(n):
                if i == 0 and j == 0:
                    features.append(block(base, base * 4, block_num, 2))
                elif j == 0:
                    features.append(block(base * 2 ** (i + 1), base * 2 ** (i + 2), block_num, 2))
                else:
                    features.append(block(base * 2 ** (i + 2), base * 2 ** (i + 2), block_num, 1))
        self.features = nn.Sequential(*features)
        self.feat_channels = [base // 2, base] + [base * 2 ** (i + 2) for i in range(len(self.layers))]
        # Index boundaries of the five outputs inside ``features``.
        ends = [1, 2]
        for n in self.layers:
            ends.append(ends[-1] + n)
        self._ends = ends

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        start = 0
        for end in self._ends:
            for idx in range(start, end):
                x = self.features[idx](x)
            outs.append(x)
            start = end
        return outs

    def init_weights(self) -> None:
        """PaddleSeg's STDC init: conv W ~ N(0, 0.001), BN gamma 1 beta 0."""
        paddle_default_init(self, conv_std=0.001)


def stdc1(**kwargs) -> STDCNet:
    """STDC1: stage depths (2, 2, 2)."""
    return STDCNet(layers=(2, 2, 2), **kwargs)


def stdc2(**kwargs) -> STDCNet:
    """STDC2: stage depths (4, 5, 3)."""
    return STDCNet(layers=(4, 5, 3), **kwargs)


BACKBONES = {"STDC1": stdc1, "STDC2": stdc2}
