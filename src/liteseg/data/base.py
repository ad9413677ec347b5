"""The dataset base class: samples (image path, label path), classes, label remapping and sample checks."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..errors import DatasetError
from ..palettes import generate_palette
from .io import image_size, read_image, read_label

log = logging.getLogger(__name__)

Transforms = Callable[[np.ndarray, "np.ndarray | None"], "tuple[np.ndarray, np.ndarray | None]"]


@dataclass(frozen=True)
class Sample:
    """One image and its label file (None when unlabelled); ``lut`` maps raw label values (256 entries)."""

    image: str
    label: str | None = None
    lut: np.ndarray | None = None


def label_lut(label_map: Mapping[int, int] | Sequence[int] | np.ndarray | None) -> np.ndarray | None:
    """A 256-entry uint8 lookup table from ``{raw: class}`` (unlisted values kept) or a full 256-entry table."""
    if label_map is None:
        return None
    if isinstance(label_map, Mapping):
        lut = np.arange(256, dtype=np.int64)
        for raw, new in label_map.items():
            lut[int(raw)] = int(new)
    else:
        lut = np.asarray(label_map, dtype=np.int64)
        if lut.shape != (256,):
            raise DatasetError(f"a label remap table needs 256 entries (one per 8-bit value), got shape {lut.shape}")
    if lut.min() < 0 or lut.max() > 255:
        raise DatasetError("label remap values must be in 0-255")
    return lut.astype(np.uint8)


class SegDataset(Dataset):
    """Images with optional labels; items are ``{"image": uint8 HxWx3 RGB, "label": uint8 HxW | None, "path"}``.

    ``transforms(image, label) -> (image, label)`` runs in ``__getitem__``. Every loaded sample is checked (image
    and label sizes agree, label values are class indices or ``ignore_index``); :meth:`validate` checks the whole
    set up front and can drop bad samples instead of failing.
    """

    def __init__(self, samples: Sequence[Sample], class_names: Sequence[str], *, palette: Any = None,
                 ignore_index: int = 255, transforms: Transforms | None = None, name: str = "") -> None:
        if not class_names:
            raise DatasetError(f"{name or 'dataset'}: no class names given")
        self.samples = list(samples)
        self.class_names = [str(c) for c in class_names]
        self.palette = (np.asarray(palette, dtype=np.uint8) if palette is not None
                        else generate_palette(len(self.class_names)))
        if self.palette.shape != (self.num_classes, 3):
            raise DatasetError(f"{name or 'dataset'}: palette has shape {self.palette.shape}, expected "
                               f"({self.num_classes}, 3)")
        self.ignore_index = int(ignore_index)
        self.transforms = transforms
        self.name = name
        self.skipped: list[tuple[str, str]] = []
        self.validated = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        image = read_image(sample.image)
        label = None
        if sample.label is not None:
            label = self._read_label(sample)
            if label.shape != image.shape[:2]:
                raise DatasetError(self._size_message(sample, image.shape[:2], label.shape))
            self._check_values(sample, label)
        if self.transforms is not None:
            image, label = self.transforms(image, label)
        return {"image": image, "label": label, "path": sample.image}

    def _read_label(self, sample: Sample) -> np.ndarray:
        label = read_label(sample.label)
        return sample.lut[label] if sample.lut is not None else label

    def _size_message(self, sample: Sample, image_hw: tuple[int, ...], label_hw: tuple[int, ...]) -> str:
        return (f"{sample.label}: label is {label_hw[1]}x{label_hw[0]} but its image {sample.image} is "
                f"{image_hw[1]}x{image_hw[0]} (WxH); image and label must have the same size")

    def _check_values(self, sample: Sample, label: np.ndarray) -> None:
        counts = np.bincount(label.ravel(), minlength=256)
        bad = [v for v in np.flatnonzero(counts) if v >= self.num_classes and v != self.ignore_index]
        if bad:
            raise DatasetError(
                f"{sample.label}: label values {[int(v) for v in bad]} are outside the {self.num_classes} classes "
                f"(0-{self.num_classes - 1}) and the ignore index {self.ignore_index}; fix the labels, remap the values "
                f"(data.label_map, e.g. {{255: 1}}) or set the right data.ignore_index, or leave such samples out "
                f"(liteseg train: data.skip_bad=true; liteseg val: --skip-bad)")

    def check_sample(self, index: int) -> str | None:
        """Why sample ``index`` is unusable (missing file, size mismatch, bad label values), or None if it is fine."""
        sample = self.samples[index]
        try:
            image_hw = image_size(sample.image)
            if sample.label is not None:
                label = self._read_label(sample)
                if label.shape != image_hw:
                    return self._size_message(sample, image_hw, label.shape)
                self._check_values(sample, label)
        except DatasetError as e:
            return str(e)
        return None

    def validate(self, skip_bad: bool = False, num_threads: int = 4, progress: bool = False) -> "SegDataset":
        """Check every sample once; raise on the first problems, or with ``skip_bad`` log and drop bad samples."""
        if self.validated:
            return self
        if not self.samples:
            raise DatasetError(f"{self.name or 'dataset'}: no samples found")
        indices = range(len(self.samples))
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            results = pool.map(self.check_sample, indices)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(self.samples), desc="checking samples", unit="img")
            problems = [(i, msg) for i, msg in zip(indices, results) if msg is not None]
        if problems and not skip_bad:
            listed = "\n  ".join(msg for _, msg in problems[:5])
            more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise DatasetError(f"{len(problems)} of {len(self.samples)} samples of {self.name or 'the dataset'} are "
                               f"unusable (to leave them out: data.skip_bad=true for liteseg train, --skip-bad for "
                               f"liteseg val, skip_bad=True in Python):\n  {listed}{more}")
        for i, msg in problems:
            log.warning("skipping %s: %s", self.samples[i].image, msg)
            self.skipped.append((self.samples[i].image, msg))
        bad = {i for i, _ in problems}
        self.samples = [s for i, s in enumerate(self.samples) if i not in bad]
        if not self.samples:
            raise DatasetError(f"{self.name or 'dataset'}: every sample is unusable")
        self.validated = True
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} samples, {self.num_classes} classes)"


def resolve(root: str | os.PathLike, path: str) -> str:
    """``path`` if absolute, else joined to ``root``."""
    return path if os.path.isabs(path) else os.path.join(os.fspath(root), path)
