"""Tiled prediction: PaddleSeg's windows, reduced to labels band by band in bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from liteseg.cli.main import main
from liteseg.errors import LitesegError
from liteseg.inference import tta
from liteseg.inference.tiling import slide_labels

CLASSES = 11


def _net(seed: int = 0):
    """A position-dependent stand-in for a model: per-pixel random 1x1 projection plus a smooth bias."""
    weights = np.random.RandomState(seed).standard_normal((CLASSES, 3)).astype(np.float32)

    def run(x: np.ndarray) -> np.ndarray:
        out = np.einsum("kc,nchw->nkhw", weights, x)
        out += np.sin(np.arange(x.shape[-1], dtype=np.float32) / 7)[None, None, None] * 0.3
        return out

    return run


def _normalize(win: np.ndarray) -> np.ndarray:
    return (win.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None].copy()


def test_labels_equal_paddleseg_slide_inference():
    image = np.random.RandomState(0).randint(0, 256, (150, 230, 3), dtype=np.uint8)
    run, seen = _net(), []
    labels = slide_labels(run, image, _normalize, (64, 48), (40, 32), progress=lambda d, t: seen.append((d, t)))
    x = torch.from_numpy(_normalize(image))
    reference = tta.slide_inference(lambda t: torch.from_numpy(run(t.numpy())), x, (64, 48), (40, 32))
    assert labels.shape == (150, 230) and (labels == reference[0].numpy().argmax(0)).all()
    assert seen[-1] == (len(seen), len(seen)) == (5 * 6, 30)
    with pytest.raises(LitesegError, match="--tile 64x48,80x32: the stride is larger than the window"):
        slide_labels(run, image, _normalize, (64, 48), (80, 32))


def test_memory_stays_far_below_full_size_logits():
    h, w = 1200, 1600
    image = np.random.RandomState(0).randint(0, 256, (h, w, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        slide_labels(_net(), image, _normalize, (256, 128), (192, 96))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    full = CLASSES * h * w * 8  # the float64 sums slide_inference keeps for the whole image
    assert peak < full / 4, (peak, full)  # band sums only: about classes x 2 window heights x width


def test_tile_cli_errors_name_the_option(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--tile", "1024x512"]) == 2
    assert "--tile '1024x512': expected CROP,STRIDE" in capsys.readouterr().err
