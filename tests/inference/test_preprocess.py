"""Resizing helpers against torch's interpolate written out here: labels (nearest), images (bilinear, rounded), the
letterbox canvas, and the banded upsample + argmax that predict uses for camera-size outputs; normalize against the
formula in float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from liteseg.images import normalize as pixel_normalize
from liteseg.inference import preprocess
from liteseg.inference.preprocess import letterbox, normalize, resize_image, resize_labels, upsample_argmax
from liteseg.meta import ModelMeta


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


def _bilinear_reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)


def test_resize_image_keeps_black_and_white_and_reads_strided_input():
    image = np.zeros((6, 8, 3), np.uint8)
    image[:, 4:] = 255
    image[3:, :, 1] = 17
    out = resize_image(image, (9, 5))
    np.testing.assert_array_equal(out, _bilinear_reference(image, (9, 5)))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    view = image[:, ::-1]  # negative strides: copied, not refused
    np.testing.assert_array_equal(resize_image(view, (9, 5)), _bilinear_reference(view.copy(), (9, 5)))


def test_letterbox_puts_the_resized_image_in_its_box_on_the_mean_colour():
    image = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    out = letterbox(image, (10, 12), (2, 3, 5, 6), mean=[0.1, 1.2, -0.2])
    expected = np.empty((10, 12, 3), np.uint8)
    expected[:] = [26, 255, 0]  # round(0.1 * 255) = round(25.5), clipped to 0-255
    expected[2:7, 3:9] = _bilinear_reference(image, (5, 6))
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= 1 and (out == expected).mean() > 0.98
    outside = np.ones((10, 12), bool)
    outside[2:7, 3:9] = False
    np.testing.assert_array_equal(out[outside], expected[outside])  # the border is exactly the mean colour
    grey = letterbox(image, (10, 12), (2, 3, 5, 6), mean=[0.75] * 3)
    assert (grey[outside] == 191).all()  # 0.75 * 255 = 191.25 (not 0.75 * 256)


@pytest.mark.parametrize("classes, dtype", [(256, np.uint8), (257, np.int64)])
def test_upsample_argmax_ids_fit_the_class_count(classes, dtype):
    scores = np.random.default_rng(4).standard_normal((classes, 3, 4)).astype(np.float32)
    scores[-1, 0, 0] = 10.0  # the last class wins somewhere
    out = upsample_argmax(scores, (5, 7))
    full = F.interpolate(torch.from_numpy(scores)[None].double(), size=(5, 7), mode="bilinear",
                         align_corners=False)[0].argmax(0).numpy()
    assert out.dtype == dtype and out[0, 0] == classes - 1
    np.testing.assert_array_equal(out, full)


@pytest.mark.parametrize("size", [(4, 6), (6, 4), (3, 11), (2, 2)])  # same size, transposed, down, down
def test_upsample_argmax_same_size_and_downsampling(size):
    scores = np.random.default_rng(5).standard_normal((3, 4, 6)).astype(np.float32)
    out = upsample_argmax(scores, size, block_bytes=1)  # one row per band
    full = F.interpolate(torch.from_numpy(scores)[None].double(), size=size, mode="bilinear",
                         align_corners=False)[0].argmax(0).numpy()
    assert out.shape == size
    np.testing.assert_array_equal(out, full)


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def test_normalize_takes_batches_and_float_images():
    meta = ModelMeta(arch="x", num_classes=2, mean=MEAN, std=STD)
    images = np.random.default_rng(6).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    for batch in (images, images.astype(np.float32) + 0.25, images[1]):
        pixels = batch.astype(np.float64).reshape(-1, 5, 7, 3)
        expected = ((pixels / 255 - MEAN) / STD).transpose(0, 3, 1, 2)
        got = normalize(batch, meta)
        assert got.dtype == np.float32 and got.shape == expected.shape and got.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_uint8_images_are_normalised_through_one_cached_table(monkeypatch):
    """The documented fast path: one [256, 3] table per mean/std, not the formula per pixel (float input: per pixel)."""
    calls: list[tuple[int, ...]] = []

    def counting(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        calls.append(pixels.shape)
        return pixel_normalize(pixels, mean, std)

    monkeypatch.setattr(preprocess, "pixel_normalize", counting)
    preprocess._normalize_tables.cache_clear()
    meta = ModelMeta(arch="x", num_classes=2, mean=[0.25, 0.5, 0.75], std=[0.5, 0.25, 0.125])
    image = np.random.default_rng(7).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    for _ in range(2):
        normalize(image, meta)
    assert calls == [(256, 3)]
    normalize(image.astype(np.float32), meta)
    assert calls == [(256, 3), (1, 4, 5, 3)]
