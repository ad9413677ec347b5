"""TTA protocols against reference implementations written here with explicit loops and a numpy model.

The model is a hand-written function of its input (a fixed channel mix plus a ramp over the rows and columns of the
tensor it is given), so every window, flip and scale changes its logits in a way numpy reproduces exactly; it counts
its forward passes and fails past a small budget, so a wrong window count fails at once instead of running long.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from liteseg.errors import LitesegError
from liteseg.inference import tta

MIX = np.array([[1.0, -0.5, 0.25], [0.0, 2.0, -1.0], [-1.5, 0.5, 1.0]])  # logits[k] = sum_c MIX[k, c] * x[c] + ramp
RAMP = np.array([1.0, 2.0, 3.0])  # per class: RAMP[k] * (0.1 * row + 0.01 * column), rows/columns of the input seen
H, W = 13, 17


class TinyModel:
    """``logits_fn`` with logits known in closed form (see ``_np_model``); counts calls, fails past ``budget``."""

    def __init__(self, budget: int = 64) -> None:
        self.calls, self.budget = 0, budget

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.budget:
            raise AssertionError(f"more than {self.budget} forward passes")
        h, w = x.shape[-2:]
        ramp = 0.1 * torch.arange(h, dtype=torch.float64)[:, None] + 0.01 * torch.arange(w, dtype=torch.float64)
        mixed = torch.einsum("kc,nchw->nkhw", torch.from_numpy(MIX), x.double())
        return (mixed + torch.from_numpy(RAMP)[None, :, None, None] * ramp).float()


def _np_model(a: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[0:a.shape[-2], 0:a.shape[-1]]
    return np.einsum("kc,nchw->nkhw", MIX, a) + RAMP[None, :, None, None] * (0.1 * rows + 0.01 * cols)


@pytest.fixture
def image() -> torch.Tensor:
    """Two images (a batch), 13x17: small, not square, odd sizes."""
    return torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, H, W)).astype(np.float32))


def test_window_placement_matches_paddleseg_measurement():
    # PaddleSeg 2.8.0 on 360x480 with crop 256 / stride 192 (SPEC 5.3)
    assert tta.window_starts(360, 256, 192) == [0, 104]
    assert tta.window_starts(480, 256, 192) == [0, 192, 224]
    assert tta.window_starts(200, 256, 192) == [0]  # smaller than the window: one (smaller) window
    assert tta.window_starts(256, 256, 192) == [0]  # exactly the window
    assert tta.window_starts(10, 4, 3) == [0, 3, 6]  # the strides land on the end: nothing shifted
    assert tta.window_starts(11, 4, 3) == [0, 3, 6, 7]


def _reference_slide(x: np.ndarray, crop, stride) -> tuple[np.ndarray, int]:
    """SPEC 5.3's formula with the numpy model; also returns the number of windows."""
    h, w = x.shape[-2:]
    (cw, ch), (sw, sh) = crop, stride
    rows = 1 if h <= ch else math.ceil((h - ch) / sh) + 1
    cols = 1 if w <= cw else math.ceil((w - cw) / sw) + 1
    total, count = 0, np.zeros((h, w))
    for r in range(rows):
        for c in range(cols):
            y1, x1 = r * sh, c * sw
            y2, x2 = min(y1 + ch, h), min(x1 + cw, w)
            y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
            out = np.zeros((x.shape[0], len(MIX), h, w))
            out[:, :, y1:y2, x1:x2] = _np_model(x[:, :, y1:y2, x1:x2].astype(np.float64))
            total = total + out
            count[y1:y2, x1:x2] += 1
    return total / count, rows * cols


@pytest.mark.parametrize("crop,stride", [((8, 6), (5, 4)), ((20, 5), (3, 3)), ((6, 20), (4, 9)), ((17, 13), (4, 4)),
                                         ((30, 30), (8, 8))])
def test_slide_matches_reference(image, crop, stride):
    model = TinyModel()
    out = tta.slide_inference(model, image, crop, stride)
    ref, windows = _reference_slide(image.numpy(), crop, stride)
    assert out.dtype == torch.float32 and out.shape == (2, 3, H, W)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert model.calls == windows  # each window once
    if crop[0] < W or crop[1] < H:
        assert not np.allclose(ref, _np_model(image.numpy()), atol=1e-3)  # windows really see other rows/columns


def test_slide_sums_overlaps_in_float64():
    """Three windows over one pixel giving 2**24, 1 and 1: float32 sums would lose both ones."""
    logits = iter([2.0 ** 24, 1.0, 1.0])
    out = tta.slide_inference(lambda t: torch.full((1, 1, *t.shape[-2:]), next(logits)), torch.zeros(1, 3, 1, 5),
                              (3, 1), (1, 1))
    expected = np.array([2 ** 24, (2 ** 24 + 1) / 2, (2 ** 24 + 2) / 3, 1, 1], dtype=np.float64).astype(np.float32)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 1, 5)
    np.testing.assert_array_equal(out.numpy()[0, 0, 0], expected)


def test_slide_refuses_uncovered_pixels(image):
    # crop 4x6, stride 9x7 on 13x17: columns 4-8 and row 6 are in no window
    message = "sliding window 4x6 with stride 9x7 leaves pixels uncovered; use a stride no larger than the window"
    with pytest.raises(LitesegError, match=f"^{re.escape(message)}$"):
        tta.slide_inference(TinyModel(), image, (4, 6), (9, 7))


def _np_flip(a: np.ndarray, h: bool, v: bool) -> np.ndarray:
    if h:
        a = a[..., ::-1]
    if v:
        a = a[..., ::-1, :]
    return np.ascontiguousarray(a)


def _resize(a: np.ndarray, size) -> np.ndarray:
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(a)), size=size, mode="bilinear",
                         align_corners=False).numpy()


def _scaled(s: float) -> tuple[int, int]:
    return int(H * s + 0.5), int(W * s + 0.5)


def test_flip_combinations_order():
    assert tta.flip_combinations() == [(False, False)]
    assert tta.flip_combinations(True) == [(False, False), (True, False)]
    assert tta.flip_combinations(False, True) == [(False, False), (False, True)]
    assert tta.flip_combinations(True, True) == [(False, False), (True, False), (False, True), (True, True)]


def test_flip_is_torch_flip_on_the_named_axes_and_no_copy_without_one(image):
    assert tta.flip(image, (False, False)) is image
    for combo, dims in (((True, False), [3]), ((False, True), [2]), ((True, True), [2, 3])):
        assert torch.equal(tta.flip(image, combo), torch.flip(image, dims))


def test_defaults_are_one_plain_forward_pass(image):
    model = TinyModel()
    out = tta.aug_inference(model, image)
    np.testing.assert_allclose(out.numpy(), _np_model(image.numpy()), atol=1e-5)
    assert model.calls == 1


def test_resize_is_bilinear_half_pixel_and_a_no_op_at_the_same_size(image):
    assert tta.resize(image, (H, W)) is image
    np.testing.assert_allclose(tta.resize(image, (7, 20)).numpy(), _resize(image.numpy(), (7, 20)), atol=1e-6)


@pytest.mark.parametrize("flip_h,flip_v", [(True, False), (False, True), (True, True)])
def test_flip_averages_unflipped_logits(image, flip_h, flip_v):
    x = image.numpy().astype(np.float64)
    combos = [(False, False)] + [c for c in [(True, False), (False, True), (True, True)]
                                 if (c[0] <= flip_h and c[1] <= flip_v)]
    ref = sum(_np_flip(_np_model(_np_flip(x, *c)), *c) for c in combos) / len(combos)
    model = TinyModel()
    out = tta.aug_inference(model, image, flip_h=flip_h, flip_v=flip_v)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert model.calls == len(combos)
    assert not np.allclose(ref, _np_model(x), atol=1e-3)


def test_multiscale_current_semantics(image):
    x = image.numpy()
    scales = (0.75, 1.0, 1.25)
    ref = 0
    for s in scales:
        scaled = _resize(x, _scaled(s))  # always from the original
        for h in (False, True):
            ref = ref + _resize(_np_flip(_np_model(_np_flip(scaled, h, False)), h, False).astype(np.float32), (H, W))
    ref = ref / 6
    model = TinyModel()
    out = tta.aug_inference(model, image, scales=scales, flip_h=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert model.calls == 6


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_multiscale_legacy_semantics(image):
    x = image.numpy()
    scales = (0.75, 1.0, 1.25)
    ref, working = 0, x
    for s in scales:
        working = _resize(working, _scaled(s))  # chained: resizes the previous scale
        for h in (False, True):
            logits = _np_flip(_np_model(_np_flip(working, h, False)), h, False).astype(np.float32)
            ref = ref + _softmax(_resize(logits, (H, W)))
    out = tta.aug_inference(TinyModel(), image, scales=scales, flip_h=True, legacy=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    current = tta.aug_inference(TinyModel(), image, scales=scales, flip_h=True)
    assert not np.allclose(current.softmax(1).numpy() * 6, ref, atol=1e-3)  # the two semantics really differ


def test_slide_inside_scales_and_flips(image):
    slide = ((8, 6), (5, 4))
    scaled = _resize(image.numpy(), _scaled(1.5))  # 20x26: 5 x 5 windows
    ref = 0
    for h in (False, True):
        windows, count = _reference_slide(_np_flip(scaled, h, False), *slide)
        ref = ref + _resize(_np_flip(windows, h, False).astype(np.float32), (H, W))
    model = TinyModel()
    out = tta.aug_inference(model, image, scales=(1.5,), flip_h=True, slide=slide)
    np.testing.assert_allclose(out.numpy(), ref / 2, atol=1e-5)
    assert model.calls == 2 * count


def test_single_scale_size_rule():
    assert tta.scaled_size((1024, 2048), 0.5) == (512, 1024)
    assert tta.scaled_size((1024, 2048), 0.75) == (768, 1536)
    assert tta.scaled_size((360, 480), 1.25) == (450, 600)
    assert tta.scaled_size((23, 31), 0.75) == (17, 23)  # int(x + 0.5)


def test_parse_slide():
    assert tta.parse_slide("256,192") == ((256, 256), (192, 192))
    assert tta.parse_slide("1024x512,768x384") == ((1024, 512), (768, 384))
    assert tta.parse_slide(" 64X32 , 1 ") == ((64, 32), (1, 1))  # spaces, a capital X, and 1 is allowed
    assert tta.parse_slide("1 024 x 512, 768") == ((1024, 512), (768, 768))  # every space goes, even inside a number
    for bad in ("256", "a,b", "0,1", "1x2x3,4", "4,-1", "1,2,3"):
        with pytest.raises(LitesegError, match="CROP,STRIDE"):
            tta.parse_slide(bad)


def test_parse_slide_error_names_the_option_and_shows_examples():
    message = "--slide '256': expected CROP,STRIDE with each N or WxH, e.g. 256,192 or 1024x512,768x384"
    with pytest.raises(LitesegError, match=f"^{re.escape(message)}$"):
        tta.parse_slide("256")
    with pytest.raises(LitesegError, match=r"^--tile 'x,1': expected CROP,STRIDE"):
        tta.parse_slide("x,1", option="--tile")
