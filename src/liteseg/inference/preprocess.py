"""Image -> network input and logits -> original size, driven by :class:`~liteseg.meta.ModelMeta` only."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..images import normalize as pixel_normalize
from ..meta import ModelMeta


def normalize(images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 RGB ``[N, H, W, 3]`` (or ``[H, W, 3]``) -> float32 ``[N, 3, H, W]``: ``(img/255 - mean)/std``."""
    if images.ndim == 3:
        images = images[None]
    x = pixel_normalize(images.astype(np.float32), np.asarray(meta.mean, np.float32), np.asarray(meta.std, np.float32))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of float ``[N, C, H, W]`` arrays (align_corners=False, as PaddleSeg)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=size, mode="bilinear", align_corners=False)
    return t.numpy()


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 ``[H, W, 3]`` image (no antialiasing, like cv2.INTER_LINEAR in PaddleSeg)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer ``[H, W]`` label map."""
    if tuple(labels.shape) == tuple(size):
        return labels
    t = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))[None, None].float()
    return F.interpolate(t, size=size, mode="nearest")[0, 0].numpy().astype(labels.dtype)
