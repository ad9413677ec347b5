"""CamVid (SegNet 11-class version) from PaddleSeg-style list files ``<root>/<split>.txt``."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from ..palettes import CAMVID_CLASSES, CAMVID_PALETTE
from .base import Transforms
from .list_dataset import ListDataset


class CamVidDataset(ListDataset):
    """CamVid split ``split`` (train/val/test) listed in ``<root>/<split>.txt``; 11 classes, void = 255."""

    def __init__(self, root: str | os.PathLike, split: str = "val", *, transforms: Transforms | None = None,
                 ignore_index: int = 255) -> None:
        list_file = Path(root) / f"{split}.txt"
        if not list_file.is_file():
            raise DatasetError(f"{list_file}: no such list file; a CamVid root holds train.txt / val.txt / test.txt "
                               f"with '<image> <label>' lines")
        super().__init__(list_file, root, class_names=CAMVID_CLASSES, palette=CAMVID_PALETTE,
                         ignore_index=ignore_index, transforms=transforms)
