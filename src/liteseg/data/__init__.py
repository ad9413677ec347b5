"""Datasets (Cityscapes, CamVid, file lists, folders) yielding ``{"image", "label", "path"}`` dicts."""
from __future__ import annotations

from typing import Any

from ..errors import DatasetError
from .base import Sample, SegDataset, label_lut
from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset, labelids_to_trainids, trainids_to_labelids
from .io import read_image, read_label
from .list_dataset import FolderDataset, ListDataset

SPEC_FORMS = ("cityscapes:/root", "camvid:/root", "list:/path/file.txt", "folders:/images_dir,/labels_dir")


def build_dataset(spec: str, split: str = "val", **kw: Any) -> SegDataset:
    """A dataset from ``cityscapes:/root``, ``camvid:/root``, ``list:/path/file.txt`` or ``folders:IMAGES,LABELS``.

    ``split`` picks the Cityscapes/CamVid split (ignored by list and folder datasets). ``kw`` go to the dataset
    constructor (``transforms``; for list/folder datasets also ``class_names``, ``num_classes``, ``ignore_index``,
    ``label_map``, ``palette``).
    """
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise DatasetError(f"dataset {spec!r}: expected one of {', '.join(SPEC_FORMS)}")
    kind = kind.lower()
    if kind == "cityscapes":
        return CityscapesDataset(path, split, **kw)
    if kind == "camvid":
        return CamVidDataset(path, split, **kw)
    if kind == "list":
        return ListDataset(path, **kw)
    if kind == "folders":
        images, _, labels = path.partition(",")
        return FolderDataset(images, labels or None, **kw)
    raise DatasetError(f"dataset {spec!r}: unknown kind {kind!r}; expected one of {', '.join(SPEC_FORMS)}")


def dataset_options(data: Any, spec: str) -> dict[str, Any]:
    """:func:`build_dataset` keywords for ``spec`` from a ``DataConfig`` (class names, ignore index, label map,
    palette); a DatasetError for an option the dataset kind cannot take."""
    kind = spec.partition(":")[0].lower()
    custom = kind in ("list", "folders")
    options: dict[str, Any] = {}
    if data.class_names:
        options["class_names"] = data.class_names
    if custom or kind == "camvid":
        options["ignore_index"] = data.ignore_index
    for key in ("label_map", "palette"):
        value = getattr(data, key)
        if value is not None and not custom:
            raise DatasetError(f"data.{key} applies to list:/folders: datasets; {spec} has fixed classes")
        if value is not None:
            options[key] = value
    return options


__all__ = ["build_dataset", "dataset_options", "SegDataset", "Sample", "CityscapesDataset", "CamVidDataset", "ListDataset",
           "FolderDataset", "labelids_to_trainids", "trainids_to_labelids", "label_lut", "read_image", "read_label",
           "DatasetError"]
