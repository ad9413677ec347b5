"""The pixel budget ``serve`` and ``predict`` enforce before an image becomes float tensors.

A model's memory grows with the pixels it sees: a 4096x4096 image takes about 2.3 GB in PP-LiteSeg on CPU, and
a thin image costs more than its area says (every stride-2 stage keeps at least one row, so a 16777216x1 PNG
of 16 KB took over 8 GB). So each image is limited in area (``max_pixels``) and in aspect ratio
(``max_aspect``), checked from the header before decoding where possible, and each batch in total pixels
(``max_batch_pixels``): a batch that would exceed it is split.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_ASPECT = 20.0
DEFAULT_MAX_BATCH_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class PixelBudget:
    """Per-image and per-batch limits; ``None`` disables one."""

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_aspect: float | None = DEFAULT_MAX_ASPECT
    max_batch_pixels: int | None = DEFAULT_MAX_BATCH_PIXELS

    def problem(self, width: int, height: int, area: bool = True) -> str | None:
        """Why a ``width`` x ``height`` image is over the budget (None if it fits); ``area=False`` checks only the
        aspect ratio."""
        if area and self.max_pixels is not None and width * height > self.max_pixels:
            return (f"the image is {width}x{height} = {width * height} pixels, more than the limit of "
                    f"{self.max_pixels} (--max-pixels); downscale it")
        if self.max_aspect is not None and width and height and \
                max(width, height) > self.max_aspect * min(width, height):
            return (f"the image is {width}x{height}, an aspect ratio over {self.max_aspect:g}:1 (--max-aspect), "
                    f"which costs far more memory than its area; crop or pad it")
        return None

    def fits_batch(self, batch_pixels: int, image_pixels: int) -> bool:
        """Whether an image of ``image_pixels`` may join a batch already holding ``batch_pixels`` (a lone image
        always fits: ``max_pixels`` bounds it)."""
        return not batch_pixels or self.max_batch_pixels is None or \
            batch_pixels + image_pixels <= self.max_batch_pixels
