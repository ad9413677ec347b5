"""Cityscapes in the official layout (leftImg8bit/gtFine), with the labelId -> trainId mapping built in."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..palettes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CITYSCAPES_TRAINID_TO_LABELID
from .base import Sample, SegDataset, Transforms

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAINID_SUFFIX = "_gtFine_labelTrainIds.png"
LABELID_SUFFIX = "_gtFine_labelIds.png"

LABELID_TO_TRAINID = np.full(256, 255, dtype=np.uint8)
LABELID_TO_TRAINID[list(CITYSCAPES_TRAINID_TO_LABELID)] = np.arange(len(CITYSCAPES_TRAINID_TO_LABELID))


def labelids_to_trainids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds -> trainIds (0-18; every other id, -1 stored as 255 included, -> 255)."""
    return LABELID_TO_TRAINID[np.asarray(label_ids, dtype=np.uint8)]


def trainids_to_labelids(train_ids: np.ndarray) -> np.ndarray:
    """trainIds -> labelIds for test-server submissions (255 -> 0, 'unlabeled')."""
    table = np.zeros(256, dtype=np.uint8)
    table[:len(CITYSCAPES_TRAINID_TO_LABELID)] = CITYSCAPES_TRAINID_TO_LABELID
    return table[np.asarray(train_ids, dtype=np.uint8)]


class CityscapesDataset(SegDataset):
    """``<root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` paired with ``gtFine/<split>/<city>/`` labels.

    ``*_gtFine_labelTrainIds.png`` is used when present, else ``*_gtFine_labelIds.png`` converted on the fly; when
    the split has no gtFine folder the samples are unlabelled.
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", *, transforms: Transforms | None = None) -> None:
        root = Path(root)
        image_dir = root / "leftImg8bit" / split
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise DatasetError(f"{image_dir}: no <city>/*{IMAGE_SUFFIX} images; expected the official Cityscapes "
                               f"layout <root>/leftImg8bit/{split}/<city>/ and <root>/gtFine/{split}/<city>/")
        label_dir = root / "gtFine" / split
        samples = []
        for img in images:
            if not label_dir.is_dir():
                samples.append(Sample(str(img)))
                continue
            stem = label_dir / img.parent.name / img.name[:-len(IMAGE_SUFFIX)]
            train_ids = Path(f"{stem}{TRAINID_SUFFIX}")
            if train_ids.is_file():
                samples.append(Sample(str(img), str(train_ids)))
            else:  # a missing labelIds file is reported by the sample check
                samples.append(Sample(str(img), f"{stem}{LABELID_SUFFIX}", LABELID_TO_TRAINID))
        super().__init__(samples, CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE, ignore_index=255,
                         transforms=transforms, name=f"cityscapes {split} ({root})")
