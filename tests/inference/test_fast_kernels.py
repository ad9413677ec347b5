"""The table-driven / running-maximum kernels equal the direct float formulas they replace, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from liteseg.inference.preprocess import argmax_channels, normalize
from liteseg.inference.visualize import color_image, colorize, overlay
from liteseg.meta import ModelMeta


def _normalize_formula(images, meta):
    x = images[None].astype(np.float32) / 255.0
    x = (x - np.asarray(meta.mean, np.float32)) / np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("mean,std", [([0.5] * 3, [0.5] * 3), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
def test_normalize_is_bitwise_the_float_formula(mean, std):
    meta = ModelMeta(arch="x", num_classes=2, mean=mean, std=std)
    image = np.random.RandomState(0).randint(0, 256, (31, 47, 3)).astype(np.uint8)
    image[0, :3] = [[0, 0, 0], [255, 255, 255], [1, 128, 254]]
    for img in (image, image[:, ::2]):  # strided input too
        got = normalize(img, meta)
        assert got.dtype == np.float32 and got.shape == (1, 3, *img.shape[:2]) and got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got.view(np.uint32), _normalize_formula(img, meta).view(np.uint32))


def _overlay_formula(image, labels, palette, alpha):
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = palette
    mask = lut[labels.astype(np.int64)].astype(np.float32)
    return ((1.0 - alpha) * image.astype(np.float32) + alpha * mask).round().clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.65, 1.0])
def test_overlay_and_colorize_equal_the_float_formula(alpha):
    rng = np.random.RandomState(1)
    palette = rng.randint(0, 256, (19, 3)).tolist()
    image = rng.randint(0, 256, (40, 64, 3)).astype(np.uint8)
    labels = rng.randint(0, 256, (40, 64)).astype(np.uint8)  # ids beyond the palette and 255 (ignore) too
    np.testing.assert_array_equal(overlay(image, labels, palette, alpha), _overlay_formula(image, labels, palette, alpha))
    expected = np.zeros((256, 3), np.uint8)
    expected[:19] = palette
    np.testing.assert_array_equal(colorize(labels, palette), expected[labels])
    np.testing.assert_array_equal(colorize(labels.astype(np.int32) + 300, palette), np.zeros((40, 64, 3), np.uint8))


@pytest.mark.parametrize("channels", [1, 2, 11, 19, 256, 300])
def test_argmax_channels_equals_numpy_ties_and_nan_included(channels):
    rng = np.random.RandomState(channels)
    scores = rng.randn(channels, 23, 29).astype(np.float32)
    scores[:, :6] = np.round(scores[:, :6])  # many ties: the first maximum must win
    scores[-1, 7, 7] = np.nan
    scores[:, 8, 8] = -np.inf
    got = argmax_channels(scores)
    np.testing.assert_array_equal(got, scores.argmax(axis=0))
    assert got.dtype == (np.uint8 if channels <= 256 else np.int64)


def test_argmax_channels_fast_path_gives_uint8_and_no_channels_fails_as_numpy():
    """Without a NaN (the test above has one, which takes numpy's path) the running maximum's own ids are uint8;
    zero channels raise numpy's ValueError, not an IndexError from the fast path."""
    scores = np.random.RandomState(3).randn(5, 7, 9).astype(np.float32)
    got = argmax_channels(scores)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, scores.argmax(axis=0))
    with pytest.raises(ValueError, match="empty sequence"):
        argmax_channels(np.zeros((0, 2, 2), np.float32))


@pytest.mark.parametrize("dtype, classes", [(np.uint8, 11), (np.int64, 19), (np.int32, 300)])
def test_color_image_renders_the_colorize_colours(dtype, classes, tmp_path):
    """The palette PNG (class ids up to 255) decodes to exactly colorize()'s RGB, ignore (255) black included."""
    from PIL import Image

    rng = np.random.RandomState(classes)
    palette = rng.randint(0, 256, (min(classes, 256), 3)).tolist()
    labels = rng.randint(0, classes, (37, 53)).astype(dtype)
    labels[0, :5] = 255 if classes < 256 else 299
    image = color_image(labels, palette)
    assert image.mode == ("P" if classes <= 256 else "RGB")
    image.save(tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), colorize(labels, palette))
