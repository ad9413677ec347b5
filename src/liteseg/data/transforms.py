"""PaddleSeg's training transforms on ``(image, label, rng)``: uint8 HxWx3 RGB image, uint8 HxW label.

Every transform draws its randomness from the ``numpy.random.Generator`` it is given, so a sample's
augmentation depends only on the seed the caller derives for it (exact resume, worker-independent).
Geometry is applied identically to image and label; labels are only ever resized with nearest neighbour.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.nn import functional as F

from ..images import normalize

Sample = tuple[np.ndarray, np.ndarray]
# PaddleSeg pads images with 127.5; its RandomDistort casts to uint8 afterwards, which gives 127.
IMAGE_PAD = 127
LABEL_PAD = 255


def resize_pair(image: np.ndarray, label: np.ndarray, width: int, height: int) -> Sample:
    """Image bilinear (half-pixel centres, no antialias, like OpenCV's INTER_LINEAR), label nearest."""
    img = torch.tensor(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    img = F.interpolate(img, size=(height, width), mode="bilinear", align_corners=False)
    image = img[0].permute(1, 2, 0).clamp_(0, 255).to(torch.uint8).numpy()  # truncation, like Paddle's cast
    lab = torch.tensor(np.ascontiguousarray(label))[None, None].float()
    label = F.interpolate(lab, size=(height, width), mode="nearest")[0, 0].to(torch.uint8).numpy()
    return image, label


class ResizeStepScaling:
    """Rescale by a factor drawn from ``linspace(min, max, int((max - min) / step + 1))`` (uniform if step 0)."""

    def __init__(self, min_scale_factor: float = 0.75, max_scale_factor: float = 1.25,
                 scale_step_size: float = 0.25) -> None:
        if min_scale_factor > max_scale_factor:
            raise ValueError(f"min_scale_factor {min_scale_factor} > max_scale_factor {max_scale_factor}")
        self.min, self.max, self.step = min_scale_factor, max_scale_factor, scale_step_size

    def factors(self) -> np.ndarray:
        """The scale factors the transform chooses from (empty when drawn uniformly)."""
        if self.min == self.max:
            return np.array([self.min])
        if self.step == 0:
            return np.array([])
        return np.linspace(self.min, self.max, int((self.max - self.min) / self.step + 1))

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        factors = self.factors()
        f = float(rng.choice(factors)) if len(factors) else float(rng.uniform(self.min, self.max))
        h, w = label.shape
        return resize_pair(image, label, int(round(f * w)), int(round(f * h)))


class RandomPaddingCrop:
    """Pad bottom/right to at least ``crop_size`` (W, H) (image 127, label 255), then crop uniformly at random."""

    def __init__(self, crop_size: Sequence[int] = (512, 512), im_padding_value: int = IMAGE_PAD,
                 label_padding_value: int = LABEL_PAD) -> None:
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f"crop_size must be [width, height] with positive values, got {list(crop_size)}")
        self.width, self.height = int(crop_size[0]), int(crop_size[1])
        self.im_pad, self.label_pad = im_padding_value, label_padding_value

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        h, w = label.shape
        pad_h, pad_w = max(self.height - h, 0), max(self.width - w, 0)
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=self.im_pad)
            label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=self.label_pad)
            h, w = label.shape
        y = int(rng.integers(h - self.height + 1))
        x = int(rng.integers(w - self.width + 1))
        return (image[y:y + self.height, x:x + self.width], label[y:y + self.height, x:x + self.width])


class RandomHorizontalFlip:
    """Mirror image and label left-right with probability ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        if rng.random() < self.prob:
            return image[:, ::-1], label[:, ::-1]
        return image, label


class RandomDistort:
    """Photometric distortion (image only): brightness, contrast, saturation (PIL ImageEnhance, factor
    ``U[1 - range, 1 + range]``) and hue (HSV hue byte shifted by ``U[-hue_range, hue_range]``), in random
    order, each with its own probability; PaddleSeg's defaults with sharpness disabled."""

    def __init__(self, brightness_range: float = 0.5, brightness_prob: float = 0.5, contrast_range: float = 0.5,
                 contrast_prob: float = 0.5, saturation_range: float = 0.5, saturation_prob: float = 0.5,
                 hue_range: float = 18, hue_prob: float = 0.5) -> None:
        self.ops: list[tuple[Callable[[Image.Image, float], Image.Image], float, float]] = [
            (_brightness, brightness_range, brightness_prob), (_contrast, contrast_range, contrast_prob),
            (_saturation, saturation_range, saturation_prob), (_hue, hue_range, hue_prob),
        ]

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        pil = Image.fromarray(np.ascontiguousarray(image))
        for i in rng.permutation(len(self.ops)):
            op, rng_range, prob = self.ops[i]
            if rng.random() < prob:
                if op is _hue:
                    pil = op(pil, float(rng.uniform(-rng_range, rng_range)))
                else:
                    pil = op(pil, float(rng.uniform(1 - rng_range, 1 + rng_range)))
        return np.asarray(pil), label


def _brightness(im: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(im).enhance(factor)


def _contrast(im: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Contrast(im).enhance(factor)


def _saturation(im: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Color(im).enhance(factor)


def _hue(im: Image.Image, delta: float) -> Image.Image:
    hsv = np.array(im.convert("HSV"))
    hsv[..., 0] = ((hsv[..., 0].astype(np.float64) + delta).astype(np.int64) % 256).astype(np.uint8)
    return Image.fromarray(hsv, mode="HSV").convert("RGB")


class Compose:
    """Apply transforms in order, each with the same generator."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray, np.ndarray, np.random.Generator], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            image, label = t(image, label, rng)
        return image, label


class Normalize:
    """uint8 HxWx3 -> float32 3xHxW tensor ``(img / 255 - mean) / std``; label -> int64 HxW tensor."""

    def __init__(self, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values each (std > 0), got mean={list(mean)} std={list(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        img = torch.tensor(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        return normalize(img, self.mean, self.std), torch.tensor(np.ascontiguousarray(label)).long()
