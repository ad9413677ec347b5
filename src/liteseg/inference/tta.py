"""Inference protocols of PaddleSeg: whole image, sliding window, flips and multi-scale (current and legacy).

Every function takes ``logits_fn(x) -> logits`` mapping a normalised ``[N, 3, h, w]`` tensor to ``[N, C, h, w]``
logits and returns float32 logits (or probability sums, for the legacy mode) at the input's size.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from ..errors import LitesegError

LogitsFn = Callable[[torch.Tensor], torch.Tensor]
Size = tuple[int, int]


def flip_combinations(flip_h: bool = False, flip_v: bool = False) -> list[tuple[bool, bool]]:
    """(horizontal, vertical) flips to run, identity first, in PaddleSeg's order."""
    combos = [(False, False)]
    if flip_h:
        combos.append((True, False))
    if flip_v:
        combos.append((False, True))
        if flip_h:
            combos.append((True, True))
    return combos


def flip(x: torch.Tensor, combo: tuple[bool, bool]) -> torch.Tensor:
    """Flip an NCHW tensor horizontally and/or vertically (its own inverse)."""
    dims = [d for d, on in ((3, combo[0]), (2, combo[1])) if on]
    return torch.flip(x, dims) if dims else x


def resize(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize to (H, W) with align_corners=False (Paddle's default); no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def scaled_size(hw: Sequence[int], scale: float) -> Size:
    """PaddleSeg's test-scale target size: ``int(H*s + 0.5) x int(W*s + 0.5)``."""
    return int(hw[0] * scale + 0.5), int(hw[1] * scale + 0.5)


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Window offsets along one axis: stride steps, the last window shifted back inside (no padding)."""
    count = 1 if length <= crop else math.ceil((length - crop) / stride) + 1
    return [max(min(i * stride + crop, length) - crop, 0) for i in range(count)]


def slide_inference(logits_fn: LogitsFn, x: torch.Tensor, crop: Size, stride: Size) -> torch.Tensor:
    """PaddleSeg ``slide_inference``: windows of ``crop`` = (w, h) every ``stride`` = (w, h), logits averaged.

    Sums and hit counts are kept in float64; a pixel no window covers (stride > crop) is an error.
    """
    h, w = x.shape[-2:]
    (crop_w, crop_h), (stride_w, stride_h) = crop, stride
    total = count = None
    for y1 in window_starts(h, crop_h, stride_h):
        y2 = min(y1 + crop_h, h)
        for x1 in window_starts(w, crop_w, stride_w):
            x2 = min(x1 + crop_w, w)
            logits = logits_fn(x[..., y1:y2, x1:x2])
            if total is None:
                total = torch.zeros((x.shape[0], logits.shape[1], h, w), dtype=torch.float64, device=logits.device)
                count = torch.zeros((1, 1, h, w), dtype=torch.float64, device=logits.device)
            total[..., y1:y2, x1:x2] += logits
            count[..., y1:y2, x1:x2] += 1
    if bool((count == 0).any()):
        raise LitesegError(f"sliding window {crop_w}x{crop_h} with stride {stride_w}x{stride_h} leaves pixels "
                           f"uncovered; use a stride no larger than the window")
    return (total / count).float()


def forward(logits_fn: LogitsFn, x: torch.Tensor, slide: tuple[Size, Size] | None = None) -> torch.Tensor:
    """One forward pass over the whole input, or a sliding-window pass when ``slide`` = (crop, stride)."""
    if slide is None:
        return logits_fn(x)
    return slide_inference(logits_fn, x, *slide)


def aug_inference(logits_fn: LogitsFn, x: torch.Tensor, *, scales: Sequence[float] = (1.0,), flip_h: bool = False,
                  flip_v: bool = False, slide: tuple[Size, Size] | None = None,
                  legacy: bool = False) -> torch.Tensor:
    """Scores at the input size combining every scale and flip; argmax gives the prediction.

    Current semantics (PaddleSeg >= 2.8): each scale resizes the original input; raw logits of every (scale, flip)
    are unflipped, resized back and averaged. ``legacy`` (PaddleSeg <= 2.7, the published flip / ms+flip numbers):
    each scale resizes the previous scale's image (sizes still computed from the original), and the softmax
    probabilities of every result are summed.
    """
    hw = tuple(x.shape[-2:])
    combos = flip_combinations(flip_h, flip_v)
    total = None
    image = x
    for scale in scales:
        image = resize(image if legacy else x, scaled_size(hw, scale))
        for combo in combos:
            logits = flip(forward(logits_fn, flip(image, combo), slide), combo)
            logits = resize(logits, hw)
            if legacy:
                logits = torch.softmax(logits, dim=1)
            total = logits if total is None else total + logits
    return total if legacy else total / (len(scales) * len(combos))


def parse_slide(text: str, option: str = "--slide") -> tuple[Size, Size]:
    """``"CROP,STRIDE"`` with each ``N`` or ``WxH`` -> ((crop_w, crop_h), (stride_w, stride_h)); errors name
    ``option``."""
    parts = text.replace(" ", "").lower().split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        sizes = []
        for part in parts:
            dims = [int(v) for v in part.split("x")]
            if len(dims) == 1:
                dims *= 2
            if len(dims) != 2 or min(dims) < 1:
                raise ValueError
            sizes.append((dims[0], dims[1]))
    except ValueError:
        raise LitesegError(f"{option} {text!r}: expected CROP,STRIDE with each N or WxH, e.g. 256,192 or "
                           f"1024x512,768x384") from None
    return sizes[0], sizes[1]
