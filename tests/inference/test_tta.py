"""TTA protocols against straightforward reference implementations written here with explicit loops."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from liteseg.inference import tta
from liteseg.errors import LitesegError


@pytest.fixture(scope="module")
def net():
    """A small conv net that is neither flip- nor translation-invariant at borders (zero padding)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 3, padding=1)).double().eval()
    model.requires_grad_(False)
    return lambda x: model(x.double()).float()


@pytest.fixture(scope="module")
def image():
    return torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 23, 31)).astype(np.float32))


def test_window_placement_matches_paddleseg_measurement():
    # PaddleSeg 2.8.0 on 360x480 with crop 256 / stride 192 (SPEC 5.3)
    assert tta.window_starts(360, 256, 192) == [0, 104]
    assert tta.window_starts(480, 256, 192) == [0, 192, 224]
    assert tta.window_starts(200, 256, 192) == [0]  # smaller than the window: one (smaller) window


def _reference_slide(fn, x, crop, stride):
    h, w = x.shape[-2:]
    (cw, ch), (sw, sh) = crop, stride
    rows = 1 if h <= ch else math.ceil((h - ch) / sh) + 1
    cols = 1 if w <= cw else math.ceil((w - cw) / sw) + 1
    total, count = None, np.zeros((h, w))
    for r in range(rows):
        for c in range(cols):
            y1, x1 = r * sh, c * sw
            y2, x2 = min(y1 + ch, h), min(x1 + cw, w)
            y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
            out = fn(x[:, :, y1:y2, x1:x2]).numpy().astype(np.float64)
            if total is None:
                total = np.zeros((1, out.shape[1], h, w))
            total[:, :, y1:y2, x1:x2] += out
            count[y1:y2, x1:x2] += 1
    return total / count


@pytest.mark.parametrize("crop,stride", [((16, 16), (12, 12)), ((20, 10), (15, 7)), ((40, 40), (8, 8))])
def test_slide_matches_reference(net, image, crop, stride):
    out = tta.slide_inference(net, image, crop, stride)
    np.testing.assert_allclose(out.numpy(), _reference_slide(net, image, crop, stride), atol=1e-6)
    if crop[0] < image.shape[-1]:
        assert not torch.allclose(out, net(image), atol=1e-4)  # windows really see borders


def test_slide_refuses_uncovered_pixels(net, image):
    with pytest.raises(LitesegError, match="uncovered"):
        tta.slide_inference(net, image, (8, 8), (10, 10))


def _np_flip(a, h, v):
    if h:
        a = a[..., ::-1]
    if v:
        a = a[..., ::-1, :]
    return np.ascontiguousarray(a)


def _run(fn, x):
    return fn(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _resize(a, size):
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(a)), size=size, mode="bilinear",
                         align_corners=False).numpy()


def test_flip_combinations_order():
    assert tta.flip_combinations() == [(False, False)]
    assert tta.flip_combinations(True) == [(False, False), (True, False)]
    assert tta.flip_combinations(False, True) == [(False, False), (False, True)]
    assert tta.flip_combinations(True, True) == [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("flip_h,flip_v", [(True, False), (False, True), (True, True)])
def test_flip_averages_unflipped_logits(net, image, flip_h, flip_v):
    x = image.numpy()
    combos = [(False, False)] + [c for c in [(True, False), (False, True), (True, True)]
                                 if (c[0] <= flip_h and c[1] <= flip_v)]
    ref = sum(_np_flip(_run(net, _np_flip(x, *c)), *c) for c in combos) / len(combos)
    out = tta.aug_inference(net, image, flip_h=flip_h, flip_v=flip_v)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-6)
    assert not np.allclose(ref, _run(net, x), atol=1e-4)


def test_multiscale_current_semantics(net, image):
    x, hw = image.numpy(), (23, 31)
    scales = (0.75, 1.0, 1.25)
    ref = 0
    for s in scales:
        scaled = _resize(x, (int(23 * s + 0.5), int(31 * s + 0.5)))  # always from the original
        for h in (False, True):
            ref = ref + _resize(_np_flip(_run(net, _np_flip(scaled, h, False)), h, False), hw)
    ref = ref / 6
    out = tta.aug_inference(net, image, scales=scales, flip_h=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


def _softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_multiscale_legacy_semantics(net, image):
    x, hw = image.numpy(), (23, 31)
    scales = (0.75, 1.0, 1.25)
    ref, working = 0, x
    for s in scales:
        working = _resize(working, (int(23 * s + 0.5), int(31 * s + 0.5)))  # chained: resizes the previous scale
        for h in (False, True):
            ref = ref + _softmax(_resize(_np_flip(_run(net, _np_flip(working, h, False)), h, False), hw))
    out = tta.aug_inference(net, image, scales=scales, flip_h=True, legacy=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    current = tta.aug_inference(net, image, scales=scales, flip_h=True)
    assert not np.allclose(current.softmax(1).numpy() * 6, ref, atol=1e-3)  # the two semantics really differ


def test_slide_inside_scales_and_flips(net, image):
    slide = ((16, 16), (12, 12))
    x = image.numpy()
    scaled = _resize(x, (int(23 * 1.5 + 0.5), int(31 * 1.5 + 0.5)))
    ref = 0
    for h in (False, True):
        windows = _reference_slide(net, torch.from_numpy(_np_flip(scaled, h, False)), *slide).astype(np.float32)
        ref = ref + _resize(_np_flip(windows, h, False), (23, 31))
    out = tta.aug_inference(net, image, scales=(1.5,), flip_h=True, slide=slide)
    np.testing.assert_allclose(out.numpy(), ref / 2, atol=1e-5)


def test_single_scale_size_rule():
    assert tta.scaled_size((1024, 2048), 0.5) == (512, 1024)
    assert tta.scaled_size((1024, 2048), 0.75) == (768, 1536)
    assert tta.scaled_size((360, 480), 1.25) == (450, 600)
    assert tta.scaled_size((23, 31), 0.75) == (17, 23)  # int(x + 0.5)


def test_parse_slide():
    assert tta.parse_slide("256,192") == ((256, 256), (192, 192))
    assert tta.parse_slide("1024x512,768x384") == ((1024, 512), (768, 384))
    for bad in ("256", "a,b", "0,1", "1x2x3,4"):
        with pytest.raises(LitesegError, match="CROP,STRIDE"):
            tta.parse_slide(bad)
