"""Image -> network input and logits -> original size, driven by :class:`~liteseg.meta.ModelMeta` only."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..meta import ModelMeta


def normalize(images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 RGB ``[N, H, W, 3]`` (or ``[H, W, 3]``) -> float32 ``[N, 3, H, W]``: ``(img/255 - mean)/std``."""
    if images.ndim == 3:
        images = images[None]
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(meta.mean, np.float32)) / np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of float ``[N, C, H, W]`` arrays (align_corners=False, as PaddleSeg)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=size, mode="bilinear", align_corners=False)
    return t.numpy()
