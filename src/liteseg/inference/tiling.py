"""Sliding-window prediction of very large images, reduced to labels band by band.

The same windows as PaddleSeg's ``slide_inference`` (:func:`liteseg.inference.tta.window_starts`); since every
pixel's average divides the window sum by a positive count, its argmax is the argmax of the sum. Sums are kept only
for the rows the current row of windows covers (float32); rows no later window reaches become labels at once. So
memory holds the image, its labels and ``classes x crop height x width`` floats, never every class at full size.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import LitesegError
from .preprocess import argmax_channels
from .tta import Size, window_starts


def _check_cover(length: int, crop: int, stride: int, text: str) -> None:
    if length > crop and stride > crop:
        raise LitesegError(f"{text}: the stride is larger than the window, which leaves pixels uncovered; use a "
                           f"stride no larger than the window")


def slide_labels(logits_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                 normalize: Callable[[np.ndarray], np.ndarray], crop: Size, stride: Size,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Labels ``[H, W]`` of a uint8 ``[H, W, 3]`` image from windows of ``crop`` = (w, h) every ``stride`` = (w, h).

    ``normalize`` turns a window into the network input ``[1, 3, h, w]``; ``logits_fn`` gives its logits
    ``[1, C, h, w]``; ``progress(done, total)`` is called after each window.
    """
    h, w = image.shape[:2]
    (crop_w, crop_h), (stride_w, stride_h) = crop, stride
    text = f"--tile {crop_w}x{crop_h},{stride_w}x{stride_h}"
    _check_cover(h, crop_h, stride_h, text)
    _check_cover(w, crop_w, stride_w, text)
    ys, xs = window_starts(h, crop_h, stride_h), window_starts(w, crop_w, stride_w)
    total, done = len(ys) * len(xs), 0
    labels: np.ndarray | None = None
    acc: np.ndarray | None = None  # sums for rows [top, top + acc height)
    top = 0
    for i, y1 in enumerate(ys):
        y2 = min(y1 + crop_h, h)
        for x1 in xs:
            x2 = min(x1 + crop_w, w)
            logits = np.asarray(logits_fn(normalize(image[y1:y2, x1:x2])))[0]
            if acc is None:
                acc = np.zeros((logits.shape[0], 0, w), dtype=np.float32)
                labels = np.empty((h, w), dtype=np.uint8 if logits.shape[0] <= 256 else np.int64)
            if acc.shape[1] < y2 - top:  # the band grows to this row of windows
                grown = np.zeros((acc.shape[0], y2 - top, w), dtype=np.float32)
                grown[:, :acc.shape[1]] = acc
                acc = grown
            acc[:, y1 - top:y2 - top, x1:x2] += logits
            done += 1
            if progress is not None:
                progress(done, total)
        final = (ys[i + 1] if i + 1 < len(ys) else h) - top  # rows no later window reaches
        labels[top:top + final] = argmax_channels(acc[:, :final])
        acc = np.ascontiguousarray(acc[:, final:])
        top += final
    return labels
