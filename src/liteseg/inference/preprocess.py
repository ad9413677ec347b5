"""Image -> network input and logits -> original size, driven by :class:`~liteseg.meta.ModelMeta` only."""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

from ..images import normalize as pixel_normalize
from ..meta import ModelMeta


def normalize(images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 RGB ``[N, H, W, 3]`` (or ``[H, W, 3]``) -> float32 ``[N, 3, H, W]``: ``(img/255 - mean)/std``.

    uint8 input goes through a per-channel table of the same float32 formula (exact, and several times faster).
    """
    if images.ndim == 3:
        images = images[None]
    if images.dtype == np.uint8 and images.shape[-1] == 3:
        tables = _normalize_tables(tuple(float(m) for m in meta.mean), tuple(float(s) for s in meta.std))
        out = np.empty((images.shape[0], 3, *images.shape[1:3]), dtype=np.float32)
        for c in range(3):
            np.take(tables[c], images[..., c], out=out[:, c])
        return out
    x = pixel_normalize(images.astype(np.float32), np.asarray(meta.mean, np.float32), np.asarray(meta.std, np.float32))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@functools.lru_cache(maxsize=8)
def _normalize_tables(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``[3, 256]`` float32: the normalised value of every uint8 level per channel."""
    levels = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1)
    return np.ascontiguousarray(pixel_normalize(levels, np.asarray(mean, np.float32), np.asarray(std, np.float32)).T)


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``a``'s memory when it is writable and C-contiguous, else of a C-contiguous copy (decoded
    images are read-only numpy views, and ``torch.from_numpy`` warns about those)."""
    return torch.from_numpy(a if a.flags.writeable and a.flags.c_contiguous else np.array(a, order="C"))


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of float ``[N, C, H, W]`` arrays (align_corners=False, as PaddleSeg)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    t = F.interpolate(_tensor(x), size=size, mode="bilinear", align_corners=False)
    return t.numpy()


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 ``[H, W, 3]`` image (no antialiasing, like cv2.INTER_LINEAR in PaddleSeg)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    t = _tensor(image).permute(2, 0, 1)[None].float()
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer ``[H, W]`` label map."""
    if tuple(labels.shape) == tuple(size):
        return labels
    t = _tensor(labels.astype(np.int64))[None, None].float()
    return F.interpolate(t, size=size, mode="nearest")[0, 0].numpy().astype(labels.dtype)


def argmax_channels(scores: np.ndarray) -> np.ndarray:
    """Class ids ``[H, W]`` of float scores ``[C, H, W]``: ``scores.argmax(axis=0)`` (first maximum wins, NaN too).

    Up to 256 classes the ids come as uint8 from a running maximum over the channels, several times faster than
    numpy's strided argmax and much faster than torch's channel argmax on CPU; more classes fall back to numpy.
    """
    if scores.ndim != 3 or not 0 < scores.shape[0] <= 256:
        return scores.argmax(axis=0)
    best = scores[0].copy()
    ids = np.zeros(best.shape, dtype=np.uint8)
    greater = np.empty(best.shape, dtype=bool)
    for c in range(1, scores.shape[0]):
        np.greater(scores[c], best, out=greater)
        np.putmask(ids, greater, c)
        np.maximum(best, scores[c], out=best)
    if np.isnan(best).any():  # np.maximum carried a NaN through: keep numpy's NaN semantics exactly
        return scores.argmax(axis=0).astype(np.uint8)
    return ids


def upsample_argmax(scores: np.ndarray, size: tuple[int, int], block_bytes: int = 64 << 20) -> np.ndarray:
    """``argmax_channels(resize_bilinear(scores[None], size)[0])`` for float ``[C, h, w]`` scores, computed in bands
    of output rows so that a camera-size output never holds every class at full size (``block_bytes`` per band).

    Columns are resized by ``F.interpolate`` (rows kept: an exact copy), rows by the same align_corners=False
    weights; the result equals the full resize up to float rounding.
    """
    c, h, w = scores.shape
    height, width = size
    if (h, w) == (height, width):
        return argmax_channels(scores)
    cols = torch.from_numpy(resize_bilinear(np.ascontiguousarray(scores)[None], (h, width))[0])
    scale = np.float32(h / height)
    src = np.maximum(scale * (np.arange(height, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    y0 = src.astype(np.int64)
    y1 = np.minimum(y0 + 1, h - 1)
    w1 = torch.from_numpy((src - y0).astype(np.float32))[None, :, None]
    w0 = 1 - w1
    rows = max(1, block_bytes // max(1, c * width * 4))
    out = np.empty((height, width), dtype=np.uint8 if c <= 256 else np.int64)
    for r in range(0, height, rows):
        sl = slice(r, min(r + rows, height))
        band = cols[:, y0[sl]] * w0[:, sl] + cols[:, y1[sl]] * w1[:, sl]
        out[sl] = argmax_channels(band.numpy())
    return out


def letterbox(image: np.ndarray, net_hw: tuple[int, int], box: tuple[int, int, int, int],
              mean: list[float]) -> np.ndarray:
    """A uint8 ``[H, W, 3]`` image resized into ``box`` (top, left, h, w) of a ``net_hw`` canvas of the mean colour
    (0 after normalisation)."""
    top, left, h, w = box
    canvas = np.empty((*net_hw, 3), dtype=np.uint8)
    canvas[:] = np.round(np.asarray(mean) * 255).clip(0, 255).astype(np.uint8)
    canvas[top:top + h, left:left + w] = resize_image(image, (h, w))
    return canvas
