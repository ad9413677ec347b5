"""The fixed results the result-writer golden files were made from (tests/inference/writer_golden)."""
from __future__ import annotations

import numpy as np

from liteseg.inference.segmenter import SegResult
from liteseg.palettes import CAMVID_CLASSES, CAMVID_PALETTE, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE


def _blocks(rng: np.random.RandomState, classes: int, h: int, w: int, block: int = 8) -> np.ndarray:
    """Class ids in ``block``-sized squares (long runs, as real label maps), a few single pixels of noise."""
    ids = rng.randint(0, classes, (h // block, w // block)).repeat(block, 0).repeat(block, 1)
    ids[rng.rand(h, w) < 0.02] = rng.randint(0, classes)
    return ids


def camvid_result() -> SegResult:
    """11 classes, 24x32, with an image (overlay) and probabilities whose argmax are the labels."""
    rng = np.random.RandomState(0)
    labels = _blocks(rng, 11, 24, 32).astype(np.uint8)
    image = (np.linspace(0, 255, 24 * 32 * 3).reshape(24, 32, 3) * 0.7 + rng.randint(0, 70, (24, 32, 3)))
    probs = rng.rand(11, 24, 32).astype(np.float32)
    probs[labels[None] == np.arange(11)[:, None, None]] += 2.0
    probs /= probs.sum(axis=0, keepdims=True)
    return SegResult(labels=labels, class_names=list(CAMVID_CLASSES), palette=[list(c) for c in CAMVID_PALETTE],
                     image=image.astype(np.uint8), probs=probs, source="street.png")


def cityscapes_result() -> SegResult:
    """19 classes (Cityscapes train ids), 32x48."""
    labels = _blocks(np.random.RandomState(1), 19, 32, 48).astype(np.uint8)
    return SegResult(labels=labels, class_names=list(CITYSCAPES_CLASSES),
                     palette=[list(c) for c in CITYSCAPES_PALETTE], source="frankfurt.png")


def many_class_result() -> SegResult:
    """300 classes: ids above 255 need a 16-bit label PNG."""
    labels = _blocks(np.random.RandomState(2), 300, 16, 24, block=4).astype(np.int32)
    palette = [[i % 256, (i * 7) % 256, (i * 13) % 256] for i in range(300)]
    return SegResult(labels=labels, class_names=[f"c{i}" for i in range(300)], palette=palette, source="many.png")
