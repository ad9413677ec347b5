"""The bytes of every output kind, with one set of PNG and JPEG settings for files and HTTP answers alike.

Kinds: ``labels`` (class ids, 8-bit grey PNG, 16-bit above 256 classes), ``color`` (palette PNG, as PaddleSeg's
pseudo-colour output), ``overlay`` (JPEG of the colour mask over the image), ``probs`` (float16 ``.npy``) and
``label_ids`` (Cityscapes labelIds PNG, for submissions; 19-class Cityscapes models only).
"""
from __future__ import annotations

import io
import zlib
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from ..errors import LitesegError
from ..palettes import CITYSCAPES_TRAINID_TO_LABELID
from .visualize import color_image, legend

if TYPE_CHECKING:
    from .segmenter import SegResult

# Label maps and colour masks are long runs of equal pixels: zlib's RLE strategy at level 1 writes them 3-6x
# faster than PIL's default (level 6) and about as small. PNG is lossless, so the decoded pixels are the same.
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}
JPEG_QUALITY = 90
SUFFIXES = {"labels": ".png", "color": ".png", "overlay": ".jpg", "probs": ".npy", "label_ids": ".png"}
KINDS = tuple(SUFFIXES)


def check_kinds(kinds: Sequence[str], num_classes: int | None = None) -> None:
    """Refuse unknown kinds, and Cityscapes ids for a model that is not a 19-class Cityscapes one."""
    unknown = [k for k in kinds if k not in SUFFIXES]
    if unknown:
        raise LitesegError(f"unknown output kind(s) {unknown}; choose from {', '.join(KINDS)}")
    count = len(CITYSCAPES_TRAINID_TO_LABELID)
    if "label_ids" in kinds and num_classes is not None and num_classes != count:
        raise LitesegError(f"Cityscapes ids (label_ids, --cityscapes-ids) need a {count}-class Cityscapes model; "
                           f"this one has {num_classes}")


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """A PIL image or an ``[H, W]`` / ``[H, W, 3]`` array as PNG bytes (:data:`PNG_OPTIONS`)."""
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, format="PNG", **PNG_OPTIONS)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image | np.ndarray) -> bytes:
    """An RGB image or array as JPEG bytes (quality :data:`JPEG_QUALITY`)."""
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, format="JPEG",
                                                                                quality=JPEG_QUALITY)
    return buffer.getvalue()


def labels_png(labels: np.ndarray) -> bytes:
    """Class ids as a grey PNG: 8-bit for ids below 256, else 16-bit."""
    return png_bytes(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))


def cityscapes_ids(labels: np.ndarray) -> np.ndarray:
    """Cityscapes train ids -> labelIds (uint8), the ids the benchmark server expects; an id outside the 19 train
    ids (255, Cityscapes' ignore id) is labelId 0, "unlabeled"."""
    table = np.asarray(CITYSCAPES_TRAINID_TO_LABELID, dtype=np.uint8)
    labels = np.asarray(labels)
    inside = (labels >= 0) & (labels < len(table))
    return np.where(inside, table[np.where(inside, labels, 0)], 0).astype(np.uint8)


def legend_png(class_names: Sequence[str], palette: Sequence[Sequence[int]]) -> bytes:
    """The classes and their colours as a PNG (``legend.png`` of a predict run)."""
    return png_bytes(legend(class_names, palette))


def encode(kind: str, result: SegResult, alpha: float = 0.5) -> bytes:
    """The bytes of output ``kind`` of ``result`` (see the module docstring)."""
    check_kinds([kind], len(result.class_names) if kind == "label_ids" else None)
    if kind == "labels":
        return labels_png(result.labels)
    if kind == "color":
        return png_bytes(color_image(result.labels, result.palette))
    if kind == "overlay":
        return jpeg_bytes(result.overlay(alpha))
    if kind == "label_ids":
        return png_bytes(cityscapes_ids(result.labels))
    if result.probs is None:
        raise LitesegError("no probabilities computed; create the Segmenter with probs=True (predict: "
                           "--save-probs)")
    buffer = io.BytesIO()
    np.save(buffer, result.probs.astype(np.float16))
    return buffer.getvalue()
