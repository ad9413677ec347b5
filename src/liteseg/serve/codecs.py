"""Request and response bodies: uploaded bytes -> RGB array, results -> PNG bytes, JSON and RLE masks."""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..images import pil_to_rgb
from ..inference.budget import DEFAULT_MAX_ASPECT, PixelBudget
from ..inference.output_encoding import labels_png, png_bytes
from ..inference.segmenter import SegResult
from .errors import ApiError

FORMATS = ("json", "labels", "color", "overlay")


def decode_image(data: bytes, max_pixels: int, max_aspect: float | None = DEFAULT_MAX_ASPECT
                 ) -> tuple[np.ndarray, list[str]]:
    """Uploaded bytes -> RGB uint8 ``[H, W, 3]`` and conversion notes; size and aspect ratio are checked from the
    header, before any pixel is decoded."""
    if not data:
        raise ApiError(400, "empty_body", "the request carries no image bytes; send a PNG/JPEG/BMP/TIFF/WebP file")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ApiError(413, "image_too_large", f"{e}; send a smaller image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(400, "invalid_image", f"the {len(data)} bytes sent are not an image liteseg can read "
                       f"(starts with {data[:8]!r}); send a PNG, JPEG, BMP, TIFF or WebP file") from None
    with img:
        width, height = img.size
        if width * height == 0:
            raise ApiError(400, "empty_image", f"the image is {width}x{height} pixels; send a non-empty image")
        problem = PixelBudget(max_pixels, max_aspect).problem(width, height)
        if problem:
            code = "image_too_large" if width * height > max_pixels else "bad_aspect_ratio"
            raise ApiError(413, code, f"{problem} before sending")
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise ApiError(400, "invalid_image", f"the {img.format or 'image'} data is truncated or corrupt ({e}); "
                           "re-export the image and send it again") from None
        try:
            return pil_to_rgb(img, "upload")
        except InputError as e:
            raise ApiError(400, "invalid_image", str(e)) from None


def result_png(result: SegResult, fmt: str, alpha: float) -> bytes:
    """``labels`` (class ids, as ``liteseg predict`` writes them), ``color`` (RGB colour mask) or ``overlay`` as
    PNG bytes, with the PNG settings of every liteseg output (:mod:`liteseg.inference.output_encoding`)."""
    if fmt == "labels":
        return labels_png(result.labels)
    return png_bytes(result.colorize() if fmt == "color" else result.overlay(alpha))


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A boolean ``[H, W]`` mask as COCO uncompressed RLE: column-major run lengths, starting with a 0-run."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`rle_encode`."""
    h, w = rle["size"]
    values = np.zeros(len(rle["counts"]), dtype=bool)
    values[1::2] = True
    return np.repeat(values, rle["counts"]).reshape((h, w), order="F")


def result_json(result: SegResult, rle: bool = False, overlay_alpha: float | None = None) -> dict[str, Any]:
    """The JSON answer: size, classes present with pixel counts and shares, optional RLE masks and overlay PNG."""
    labels = result.labels
    counts = np.bincount(labels.ravel(), minlength=len(result.class_names))
    total = max(int(labels.size), 1)
    classes = []
    for class_id in np.flatnonzero(counts):
        entry: dict[str, Any] = {
            "id": int(class_id),
            "name": result.class_names[class_id] if class_id < len(result.class_names) else str(class_id),
            "color": list(result.palette[class_id]) if class_id < len(result.palette) else [0, 0, 0],
            "pixels": int(counts[class_id]),
            "share": float(counts[class_id]) / total,
        }
        if rle:
            entry["rle"] = rle_encode(labels == class_id)
        classes.append(entry)
    body: dict[str, Any] = {"width": int(labels.shape[1]), "height": int(labels.shape[0]), "classes": classes,
                            "notes": list(result.notes)}
    if overlay_alpha is not None:
        body["overlay_png"] = base64.b64encode(png_bytes(result.overlay(overlay_alpha))).decode("ascii")
    return body
