"""Fixtures of the training tests: a small CamVid subset, a fast val set, single-threaded torch."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest single-threaded (and do not stall on a busy machine); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def camvid_subset(camvid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A list dataset of the first 8 CamVid training images (absolute paths)."""
    lines = (camvid_dir / "train.txt").read_text().split("\n")[:8]
    list_file = tmp_path_factory.mktemp("camvid") / "subset.txt"
    list_file.write_text("\n".join(" ".join(str(camvid_dir / p) for p in line.split()) for line in lines))
    return f"list:{list_file}"


@pytest.fixture(scope="module")
def small_val(camvid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two 96x128 crops of CamVid val images, so that evaluation stays fast."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("val")
    lines = []
    for i, line in enumerate((camvid_dir / "val.txt").read_text().split("\n")[:2]):
        image, label = (Image.open(camvid_dir / p) for p in line.split())
        image.crop((0, 120, 128, 216)).save(folder / f"{i}.png")
        label.crop((0, 120, 128, 216)).save(folder / f"{i}_label.png")
        lines.append(f"{i}.png {i}_label.png")
    (folder / "val.txt").write_text("\n".join(lines))
    return f"list:{folder / 'val.txt'}"


@pytest.fixture(scope="module")
def camvid_no_void(camvid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """4 CamVid training images with void relabelled as class 0: every pixel counts, on every process."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("novoid")
    lines = []
    for i, line in enumerate((camvid_dir / "train.txt").read_text().split("\n")[:4]):
        image, label = line.split()
        raw = np.array(Image.open(camvid_dir / label))
        Image.fromarray(np.where(raw == 255, 0, raw).astype(np.uint8)).save(folder / f"{i}.png")
        lines.append(f"{camvid_dir / image} {i}.png")
    (folder / "train.txt").write_text("\n".join(lines))
    return f"list:{folder / 'train.txt'}"
