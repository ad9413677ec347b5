"""Colour masks, overlays and legends for label maps."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _color_lut(palette: Sequence[Sequence[int]], ignore_index: int) -> np.ndarray:
    lut = np.zeros((max(256, len(palette)), 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if ignore_index < len(lut) and ignore_index >= len(palette):
        lut[ignore_index] = 0
    return lut


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int = 255) -> np.ndarray:
    """``[H, W]`` class ids -> ``[H, W, 3]`` uint8 RGB; ids outside the palette (e.g. ignore) become black."""
    lut = _color_lut(palette, ignore_index)
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:  # uint8 ids always fall inside the >= 256-row table
        labels = labels.astype(np.int64).clip(0, len(lut) - 1)
    return np.take(lut, labels, axis=0)


def color_image(labels: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int = 255) -> Image.Image:
    """The colour mask as a PIL image: a palette ("P") image of the class ids, as PaddleSeg writes its pseudo-colour
    PNGs, when the ids fit in a byte (several times cheaper to encode than RGB); RGB otherwise.

    ``image.convert("RGB")`` equals :func:`colorize` exactly.
    """
    labels = np.asarray(labels)
    if labels.dtype != np.uint8 and not (labels.size and 0 <= labels.min() and labels.max() < 256):
        return Image.fromarray(colorize(labels, palette, ignore_index))
    ids = np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.frombuffer("P", (ids.shape[1], ids.shape[0]), ids.tobytes(), "raw", "P", 0, 1)
    image.putpalette(_color_lut(palette, ignore_index)[:256].tobytes())
    return image


def overlay(image: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = 0.5,
            uncoloured: Sequence[int] = ()) -> np.ndarray:
    """Blend the colour mask over an RGB uint8 image: ``(1 - alpha) * image + alpha * mask``, rounded; pixels of
    the ``uncoloured`` classes (e.g. a custom dataset's background) keep the image.

    Computed through a (class, channel, value) lookup table that holds the float32 blend of every combination,
    so it equals the direct float formula exactly at a fraction of its cost.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.dtype != np.uint8 or labels.dtype != np.uint8:
        mask = colorize(labels, palette).astype(np.float32)
        out = ((1.0 - alpha) * image.astype(np.float32) + alpha * mask).round().clip(0, 255).astype(np.uint8)
        return _keep_image(out, image, labels, uncoloured)
    tables = _blend_tables(tuple(tuple(int(v) for v in c) for c in palette), float(alpha))
    out = np.empty(image.shape, dtype=np.uint8)
    base = labels.astype(np.uint16) << 8
    index = np.empty(labels.shape, dtype=np.uint16)
    for c in range(3):
        np.add(base, image[:, :, c], out=index)
        out[:, :, c] = np.take(tables[c], index)
    return _keep_image(out, image, labels, uncoloured)


def _keep_image(out: np.ndarray, image: np.ndarray, labels: np.ndarray, uncoloured: Sequence[int]) -> np.ndarray:
    if len(uncoloured):
        keep = np.isin(labels, list(uncoloured))
        out[keep] = image[keep]
    return out


@functools.lru_cache(maxsize=8)
def _blend_tables(palette: tuple[tuple[int, ...], ...], alpha: float) -> np.ndarray:
    """``tables[channel, class * 256 + value]``: the float32 blend of ``value`` and the class colour, as uint8."""
    mask = _color_lut(palette, 255)[:256].astype(np.float32).T  # [3, 256 classes]
    values = np.arange(256, dtype=np.float32)
    blend = (1.0 - alpha) * values[None, None, :] + alpha * mask[:, :, None]  # [3, class, value]
    return blend.round().clip(0, 255).astype(np.uint8).reshape(3, -1)


def legend(class_names: Sequence[str], palette: Sequence[Sequence[int]], shares: Sequence[float] | None = None,
           columns: int = 1) -> np.ndarray:
    """An RGB image listing each class with its colour swatch (and its pixel share, if given)."""
    font = ImageFont.load_default()
    row_h, swatch, pad = 22, 16, 6
    labels = [f"{i:>3}  {name}" + (f"  {shares[i] * 100:5.1f}%" if shares is not None else "")
              for i, name in enumerate(class_names)]
    text_w = max(int(font.getlength(t)) for t in labels) if labels else 0
    col_w = pad * 3 + swatch + text_w
    rows = -(-len(labels) // columns)
    img = Image.new("RGB", (col_w * columns + pad, rows * row_h + 2 * pad), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(labels):
        x = pad + (i // rows) * col_w
        y = pad + (i % rows) * row_h
        draw.rectangle([x, y + 2, x + swatch, y + 2 + swatch], fill=tuple(int(c) for c in palette[i]),
                       outline=(0, 0, 0))
        draw.text((x + swatch + pad, y + 4), text, fill=(0, 0, 0), font=font)
    return np.asarray(img)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two equally tall RGB images next to each other."""
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"heights differ: {left.shape[0]} vs {right.shape[0]}")
    return np.concatenate([left, right], axis=1)
