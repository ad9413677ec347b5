"""Datasets (Cityscapes, CamVid, file lists, folders) yielding ``{"image", "label", "path"}`` dicts."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..errors import DatasetError
from ..registry import Entry, Registry
from .base import Sample, SegDataset, label_lut
from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset, labelids_to_trainids, trainids_to_labelids
from .io import read_image, read_label
from .list_dataset import FolderDataset, ListDataset

# kind -> ``factory(path, split, **kw)``; ``form``: how a spec of the kind reads; ``custom_classes``: the user
# names the classes (class names or count, label map, palette); ``ignore_index``: the kind takes one. A new
# kind is its module plus one line here.
DATASETS: Registry[Callable[..., SegDataset]] = Registry("dataset kind", error=DatasetError)
DATASETS.add("cityscapes", "liteseg.data.cityscapes:CityscapesDataset", form="cityscapes:/root")
DATASETS.add("camvid", "liteseg.data.camvid:CamVidDataset", form="camvid:/root", ignore_index=True)
DATASETS.add("list", "liteseg.data.list_dataset:list_from_spec", form="list:/path/file.txt", custom_classes=True,
             ignore_index=True)
DATASETS.add("folders", "liteseg.data.list_dataset:folders_from_spec", form="folders:/images_dir,/labels_dir",
             custom_classes=True, ignore_index=True)
# what a dataset with custom classes takes that one with fixed classes refuses
CLASS_OPTIONS = ("class_names", "num_classes", "label_map", "palette")


def spec_kind(spec: str) -> Entry[Callable[..., SegDataset]]:
    """The :data:`DATASETS` entry of ``spec``'s kind; a DatasetError (with a suggestion) for a bad spec."""
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        forms = ", ".join(DATASETS.entry(k).info["form"] for k in DATASETS)
        raise DatasetError(f"dataset {spec!r}: expected one of {forms}")
    if kind.lower() not in DATASETS:
        raise DatasetError(f"dataset {spec!r}: unknown kind {kind!r}; {DATASETS.hint(kind.lower())}")
    return DATASETS.entry(kind.lower())


def build_dataset(spec: str, split: str = "val", **kw: Any) -> SegDataset:
    """A dataset from ``cityscapes:/root``, ``camvid:/root``, ``list:/path/file.txt`` or ``folders:IMAGES,LABELS``
    (the kinds in :data:`DATASETS`).

    ``split`` picks the Cityscapes/CamVid split (ignored by list and folder datasets). ``kw`` go to the dataset
    constructor (``transforms``; for list/folder datasets also ``class_names``, ``num_classes``, ``ignore_index``,
    ``label_map``, ``palette``).
    """
    return DATASETS.get(spec_kind(spec).name)(spec.partition(":")[2], split, **kw)


def has_custom_classes(spec: str) -> bool:
    """Whether the user names the classes of dataset ``spec`` (``list:``, ``folders:``); Cityscapes and CamVid
    know theirs."""
    return bool(spec_kind(spec).info.get("custom_classes"))


def class_options(spec: str, values: Mapping[str, Any], spelled: Callable[[str], str]) -> dict[str, Any]:
    """The :data:`CLASS_OPTIONS` among ``values`` that were given (not None): all of them for a dataset with custom
    classes, else a DatasetError naming them as the user ``spelled`` them (``--class-names``, ``data.palette``)."""
    given = {k: v for k, v in values.items() if k in CLASS_OPTIONS and v is not None}
    if given and not has_custom_classes(spec):
        names = [spelled(k) for k in given]
        raise DatasetError(f"{', '.join(names)} {'apply' if len(names) > 1 else 'applies'} to list:/folders: "
                           f"datasets; {spec} has fixed classes")
    return given


def dataset_options(data: Any, spec: str) -> dict[str, Any]:
    """:func:`build_dataset` keywords for ``spec`` from a ``DataConfig`` (class names, ignore index, label map,
    palette); a DatasetError for an option the dataset kind cannot take."""
    options = class_options(spec, {k: getattr(data, k, None) for k in CLASS_OPTIONS}, lambda k: f"data.{k}")
    if spec_kind(spec).info.get("ignore_index"):
        options["ignore_index"] = data.ignore_index
    return options


__all__ = ["DATASETS", "CLASS_OPTIONS", "spec_kind", "build_dataset", "dataset_options", "class_options",
           "has_custom_classes", "SegDataset", "Sample", "CityscapesDataset", "CamVidDataset", "ListDataset",
           "FolderDataset", "labelids_to_trainids", "trainids_to_labelids", "label_lut", "read_image", "read_label",
           "DatasetError"]
