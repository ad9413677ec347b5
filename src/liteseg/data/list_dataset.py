"""Generic datasets: a PaddleSeg file list (``image [label]`` per line) or parallel image/label folders."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DatasetError
from .base import Sample, SegDataset, Transforms, label_lut, resolve

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _classes(class_names: Sequence[str] | None, num_classes: int | None, root: Path, what: str) -> list[str]:
    """Explicit names, else ``labels.txt`` in ``root`` (PaddleSeg convention), else ``class_i`` for num_classes."""
    if class_names is not None:
        if num_classes is not None and len(class_names) != num_classes:
            raise DatasetError(f"{what}: {len(class_names)} class names for num_classes={num_classes}")
        return list(class_names)
    names_file = root / "labels.txt"
    if num_classes is None and names_file.is_file():
        return [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    if num_classes is None:
        raise DatasetError(f"{what}: unknown classes; pass num_classes or class_names, or put a labels.txt (one "
                           f"class name per line) in {root}")
    return [f"class_{i}" for i in range(num_classes)]


class ListDataset(SegDataset):
    """Samples from a list file with ``<image> [<label>]`` per line, paths relative to ``root``.

    ``root`` defaults to the list file's folder; ``separator`` None splits on whitespace; ``label_map`` remaps raw
    label values (``{raw: class}`` or a 256-entry table) before checking and use.
    """

    def __init__(self, list_file: str | os.PathLike, root: str | os.PathLike | None = None, *,
                 class_names: Sequence[str] | None = None, num_classes: int | None = None, palette: Any = None,
                 ignore_index: int = 255, label_map: Mapping[int, int] | np.ndarray | None = None,
                 separator: str | None = None, transforms: Transforms | None = None) -> None:
        list_file = Path(list_file)
        if not list_file.is_file():
            raise DatasetError(f"{list_file}: no such list file (expected lines of '<image> <label>')")
        root = Path(root) if root is not None else list_file.parent
        lut = label_lut(label_map)
        samples = []
        for n, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(separator)
            if len(parts) > 2:
                raise DatasetError(f"{list_file}:{n}: {len(parts)} fields in {line!r}; expected '<image> [<label>]' "
                                   f"(paths with spaces need another separator)")
            label = resolve(root, parts[1].strip()) if len(parts) == 2 else None
            samples.append(Sample(resolve(root, parts[0].strip()), label, lut))
        if not samples:
            raise DatasetError(f"{list_file}: the list file is empty")
        super().__init__(samples, _classes(class_names, num_classes, root, str(list_file)), palette=palette,
                         ignore_index=ignore_index, transforms=transforms, name=str(list_file))


class FolderDataset(SegDataset):
    """Images in ``image_dir`` paired by file stem with ``.png`` labels in ``label_dir`` (sorted by name)."""

    def __init__(self, image_dir: str | os.PathLike, label_dir: str | os.PathLike | None = None, *,
                 class_names: Sequence[str] | None = None, num_classes: int | None = None, palette: Any = None,
                 ignore_index: int = 255, label_map: Mapping[int, int] | np.ndarray | None = None,
                 transforms: Transforms | None = None) -> None:
        image_dir = Path(image_dir)
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: no such image folder")
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DatasetError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        lut = label_lut(label_map)
        samples = []
        for img in images:
            label = None
            if label_dir is not None:
                label = Path(label_dir) / f"{img.stem}.png"
                if not label.is_file():
                    raise DatasetError(f"{img}: no label {label}; labels must be PNGs named like their images")
            samples.append(Sample(str(img), str(label) if label else None, lut))
        super().__init__(samples, _classes(class_names, num_classes, image_dir.parent, str(image_dir)),
                         palette=palette, ignore_index=ignore_index, transforms=transforms, name=str(image_dir))


def list_from_spec(path: str, split: str, **kw: Any) -> ListDataset:
    """The ``list:FILE`` dataset (``split`` does not apply to a list)."""
    return ListDataset(path, **kw)


def folders_from_spec(path: str, split: str, **kw: Any) -> FolderDataset:
    """The ``folders:IMAGES,LABELS`` dataset (``split`` does not apply; without LABELS, images only)."""
    images, _, labels = path.partition(",")
    return FolderDataset(images, labels or None, **kw)
