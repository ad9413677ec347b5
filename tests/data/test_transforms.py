"""Training transforms: PaddleSeg's parameters, determinism, and image/label alignment."""
from __future__ import annotations

import numpy as np
import pytest

from liteseg.data.transforms import (Compose, Normalize, RandomDistort, RandomHorizontalFlip, RandomPaddingCrop,
                                     ResizeStepScaling)

BLOCK = 8  # label blocks of 8x8 pixels; the image encodes the class of each block in every channel


def _pair(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 10, size=(h // BLOCK, w // BLOCK)).astype(np.uint8)
    label = np.kron(classes, np.ones((BLOCK, BLOCK), dtype=np.uint8))
    image = np.repeat((label * 20)[..., None], 3, axis=2).astype(np.uint8)
    return image, label


def _assert_aligned(image: np.ndarray, label: np.ndarray, min_fraction: float = 0.6) -> None:
    """Inside blocks (3x3 neighbourhood of one exact class code in the image) the label is that class."""
    value = image[..., 0].astype(int)
    padded = np.pad(value, 1, mode="edge")
    h, w = value.shape
    flat = np.ones_like(value, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            flat &= padded[dy:dy + h, dx:dx + w] == value
    exact = flat & (value % 20 == 0) & (value <= 180) & (label != 255)
    assert exact.mean() >= min_fraction
    np.testing.assert_array_equal(label[exact], value[exact] // 20)


def _assert_exactly_aligned(image: np.ndarray, label: np.ndarray) -> None:
    """Without resampling every pixel keeps its pair: image == 20 * label."""
    np.testing.assert_array_equal(image[..., 0], label.astype(np.uint8) * 20)


@pytest.mark.parametrize("lo, hi, step, n", [(0.125, 1.5, 0.125, 12), (0.5, 2.0, 0.25, 7), (0.5, 2.5, 0.25, 9),
                                             (1.0, 1.0, 0.25, 1)])
def test_scale_factors_as_paddleseg(lo, hi, step, n):
    factors = ResizeStepScaling(lo, hi, step).factors()
    assert len(factors) == n and factors[0] == lo and factors[-1] == hi


def test_resize_keeps_alignment_and_label_values():
    image, label = _pair()
    for seed in range(6):
        out_img, out_lab = ResizeStepScaling(0.5, 2.0, 0.25)(image, label, np.random.default_rng(seed))
        f = out_lab.shape[1] / label.shape[1]
        assert out_lab.shape == (round(f * 48), round(f * 64)) and out_img.shape[:2] == out_lab.shape
        assert set(np.unique(out_lab)) <= set(np.unique(label))  # nearest: no new label values
        _assert_aligned(out_img, out_lab, 0.1 if f < 1 else 0.4)


def test_padding_crop_pads_with_ignore_and_aligns():
    image, label = _pair(24, 32)
    out_img, out_lab = RandomPaddingCrop((40, 30))(image, label, np.random.default_rng(0))
    assert out_img.shape == (30, 40, 3) and out_lab.shape == (30, 40)
    np.testing.assert_array_equal(out_lab[24:], 255)
    np.testing.assert_array_equal(out_img[24:], 127)
    np.testing.assert_array_equal(out_lab[:24, :32], label)  # smaller image: only padding, offset 0
    image, label = _pair()
    for seed in range(5):
        out_img, out_lab = RandomPaddingCrop((16, 24))(image, label, np.random.default_rng(seed))
        assert out_lab.shape == (24, 16)
        _assert_exactly_aligned(out_img, out_lab)


def test_flip_moves_image_and_label_together():
    image, label = _pair()
    flips = 0
    for seed in range(10):
        out_img, out_lab = RandomHorizontalFlip(0.5)(image, label, np.random.default_rng(seed))
        flips += not np.array_equal(out_lab, label)
        _assert_exactly_aligned(out_img, out_lab)
    assert 0 < flips < 10


def test_distort_changes_only_the_image_and_is_reproducible():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    label = rng.integers(0, 5, size=(20, 30), dtype=np.uint8)
    distort = RandomDistort(brightness_prob=1, contrast_prob=1, saturation_prob=1, hue_prob=1)
    a_img, a_lab = distort(image, label, np.random.default_rng(7))
    b_img, _ = distort(image, label, np.random.default_rng(7))
    assert a_img.dtype == np.uint8 and a_img.shape == image.shape
    assert not np.array_equal(a_img, image)
    np.testing.assert_array_equal(a_img, b_img)
    assert a_lab is label


def test_full_pipeline_and_normalize():
    image, label = _pair()
    pipeline = Compose([ResizeStepScaling(0.75, 1.5, 0.25), RandomPaddingCrop((32, 32)), RandomHorizontalFlip(0.5)])
    out_img, out_lab = pipeline(image, label, np.random.default_rng(3))
    _assert_aligned(out_img, out_lab, 0.2)
    x, y = Normalize()(out_img, out_lab)
    assert x.shape == (3, 32, 32) and y.shape == (32, 32) and y.dtype.is_floating_point is False
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(Normalize()(np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1), np.uint8))[0].max()) == 1.0
