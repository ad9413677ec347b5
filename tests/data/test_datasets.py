"""Datasets: Cityscapes layout and label conversion, CamVid lists, generic lists/folders, sample checks."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from liteseg.data import (CamVidDataset, CityscapesDataset, DatasetError, FolderDataset, ListDataset, build_dataset,
                          labelids_to_trainids, read_label, trainids_to_labelids)

FRAME = "frankfurt/frankfurt_000000_000294"


def test_cityscapes_labelids_convert_to_the_provided_trainids(cityscapes_dir):
    label_ids = read_label(cityscapes_dir / f"gtFine/val/{FRAME}_gtFine_labelIds.png")
    expected = read_label(cityscapes_dir / f"gtFine/val/{FRAME}_gtFine_labelTrainIds.png")
    converted = labelids_to_trainids(label_ids)
    # the three label files were downscaled separately: 77 edge pixels legitimately disagree (sample README)
    assert int((converted != expected).sum()) == 77
    assert set(np.unique(converted)) == {0, 1, 2, 4, 5, 7, 8, 10, 11, 13, 255}
    valid = converted != 255
    assert np.array_equal(trainids_to_labelids(converted)[valid], label_ids[valid])


def test_cityscapes_dataset_prefers_trainids_and_falls_back_to_labelids(cityscapes_dir, tmp_path):
    ds = build_dataset(f"cityscapes:{cityscapes_dir}", "val")
    assert isinstance(ds, CityscapesDataset) and len(ds) == 1 and ds.num_classes == 19
    item = ds[0]
    assert item["image"].shape == (128, 256, 3) and item["image"].dtype == np.uint8
    expected = read_label(cityscapes_dir / f"gtFine/val/{FRAME}_gtFine_labelTrainIds.png")
    assert np.array_equal(item["label"], expected) and item["path"].endswith("_leftImg8bit.png")
    # raw release without labelTrainIds: labelIds are converted on the fly
    root = tmp_path / "cs"
    shutil.copytree(cityscapes_dir, root)
    (root / f"gtFine/val/{FRAME}_gtFine_labelTrainIds.png").unlink()
    raw = CityscapesDataset(root, "val").validate()
    label_ids = read_label(cityscapes_dir / f"gtFine/val/{FRAME}_gtFine_labelIds.png")
    assert np.array_equal(raw[0]["label"], labelids_to_trainids(label_ids))
    # no gtFine for the split -> unlabelled samples
    shutil.rmtree(root / "gtFine")
    assert CityscapesDataset(root, "val")[0]["label"] is None
    with pytest.raises(DatasetError, match="leftImg8bit/train"):
        CityscapesDataset(root, "train")


def test_camvid_val_list(camvid_dir):
    ds = build_dataset(f"camvid:{camvid_dir}", "val", transforms=lambda im, lab: (im[:100], lab[:100]))
    assert isinstance(ds, CamVidDataset) and len(ds) == 101 and ds.class_names[0] == "Sky"
    item = ds[0]
    assert item["image"].shape == (100, 480, 3) and item["label"].shape == (100, 480)
    assert set(np.unique(item["label"])) <= set(range(11)) | {255}
    with pytest.raises(DatasetError, match="test.txt"):
        CamVidDataset(camvid_dir, "test")


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def small_set(tmp_path):
    """Three 8x6 samples: good, label values 7 and 9 (3 classes), label of the wrong size."""
    rng = np.random.default_rng(0)
    for i in range(3):
        _write(tmp_path / f"img/{i}.png", rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    _write(tmp_path / "lab/0.png", np.array([[0, 1, 2, 255] * 2] * 6, np.uint8))
    _write(tmp_path / "lab/1.png", np.array([[0, 7, 9, 1] * 2] * 6, np.uint8))
    _write(tmp_path / "lab/2.png", np.zeros((5, 8), np.uint8))
    (tmp_path / "list.txt").write_text("".join(f"img/{i}.png lab/{i}.png\n" for i in range(3)))
    return tmp_path


def test_list_dataset_checks_every_sample(small_set):
    ds = ListDataset(small_set / "list.txt", num_classes=3)
    with pytest.raises(DatasetError) as e:
        ds.validate()
    msg = str(e.value)
    assert "2 of 3 samples" in msg and "lab/1.png: label values [7, 9]" in msg and "--skip-bad" in msg
    assert "lab/2.png: label is 8x5 but its image" in msg
    with pytest.raises(DatasetError, match=r"label values \[7, 9\]"):
        ds[1]  # a sample read without validate() is checked too
    ds.validate(skip_bad=True)
    assert len(ds) == 1 and [p for p, _ in ds.skipped] == [str(small_set / "img/1.png"), str(small_set / "img/2.png")]


def test_list_dataset_remap_classes_and_missing_files(small_set):
    ds = build_dataset(f"list:{small_set / 'list.txt'}", class_names=["a", "b", "c"], label_map={7: 255, 9: 2})
    assert ds.num_classes == 3 and ds.class_names == ["a", "b", "c"]
    assert set(np.unique(ds[1]["label"])) == {0, 1, 2, 255}
    (small_set / "labels.txt").write_text("road\ncar\nsky\n")
    assert ListDataset(small_set / "list.txt").class_names == ["road", "car", "sky"]
    (small_set / "img/0.png").unlink()
    with pytest.raises(DatasetError, match=r"img/0.png: no such file"):
        ListDataset(small_set / "list.txt", ignore_index=0, num_classes=3).validate()
    (small_set / "bad.txt").write_text("a b c\n")
    with pytest.raises(DatasetError, match="3 fields"):
        ListDataset(small_set / "bad.txt", num_classes=3)
    with pytest.raises(DatasetError, match="num_classes or class_names"):
        ListDataset(small_set / "list.txt", root=small_set / "img")


def test_folder_dataset_and_spec_errors(small_set):
    ds = build_dataset(f"folders:{small_set / 'img'},{small_set / 'lab'}", num_classes=3)
    assert isinstance(ds, FolderDataset) and len(ds) == 3 and ds[0]["label"].shape == (6, 8)
    assert build_dataset(f"folders:{small_set / 'img'}", num_classes=3)[0]["label"] is None
    with pytest.raises(DatasetError, match="expected one of"):
        build_dataset(str(small_set / "list.txt"))
    with pytest.raises(DatasetError, match="unknown kind 'voc'"):
        build_dataset("voc:/x")


def test_colour_labels_are_refused_grey_rgb_labels_read(tmp_path):
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[1, 2] = (3, 1, 1)
    _write(tmp_path / "rgb.png", colour)
    with pytest.raises(DatasetError, match="single-channel"):
        read_label(tmp_path / "rgb.png")
    grey = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1), 3, axis=2)  # R=G=B, as cv2.imwrite writes
    _write(tmp_path / "grey.png", grey)
    assert np.array_equal(read_label(tmp_path / "grey.png"), grey[..., 0])
