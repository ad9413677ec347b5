"""Resizing helpers against torch's interpolate written out here: labels (nearest), images (bilinear, rounded),
and the banded upsample + argmax that predict uses for camera-size outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from liteseg.inference.preprocess import resize_image, resize_labels, upsample_argmax


@pytest.mark.parametrize("size", [(7, 9), (30, 41), (12, 20)])
def test_resize_labels_is_nearest_and_keeps_the_dtype(size):
    labels = np.random.default_rng(0).integers(0, 300, (12, 20)).astype(np.int32)
    out = resize_labels(labels, size)
    t = torch.from_numpy(labels.astype(np.float64))[None, None]
    expected = F.interpolate(t, size=size, mode="nearest")[0, 0].numpy().astype(np.int32)
    assert out.dtype == np.int32 and out.shape == size
    np.testing.assert_array_equal(out, expected)


def test_resize_image_is_rounded_bilinear_uint8():
    image = np.random.default_rng(1).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    out = resize_image(image, (29, 8))
    t = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    expected = F.interpolate(t, size=(29, 8), mode="bilinear", align_corners=False)
    expected = expected[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == (29, 8, 3)
    assert np.abs(out.astype(int) - expected).max() <= 1 and (out == expected).mean() > 0.99
    assert resize_image(image, (13, 17)) is image


@pytest.mark.parametrize("block_bytes", [64 << 20, 4096])  # one band; bands of a few rows
def test_upsample_argmax_equals_full_resize_then_argmax(block_bytes):
    scores = np.random.default_rng(2).standard_normal((5, 9, 13)).astype(np.float32)
    out = upsample_argmax(scores, (70, 101), block_bytes=block_bytes)
    full = F.interpolate(torch.from_numpy(scores)[None].double(), size=(70, 101), mode="bilinear",
                         align_corners=False)[0]
    top2 = full.sort(0).values[-2:]
    sure = (top2[1] - top2[0] > 1e-5).numpy()
    assert out.shape == (70, 101) and sure.mean() > 0.99
    np.testing.assert_array_equal(out[sure], full.argmax(0).numpy()[sure])
