"""``predict``: outputs that cannot overwrite each other, globs that end, and the same pixel budget as serve."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liteseg.cli.main import main
from liteseg.errors import InputError
from liteseg.inference.inputs import list_sources


def _image(path: Path, size: tuple[int, int] = (24, 16), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_same_names_in_a_list_keep_their_folders_and_thin_images_are_skipped(tmp_path, serve_model_file, capsys):
    a, b = _image(tmp_path / "a" / "img.jpg", seed=1), _image(tmp_path / "b" / "img.png", seed=2)
    thin = _image(tmp_path / "thin.png", size=(2100, 1))  # over the default 20:1 aspect ratio
    listing = tmp_path / "list.txt"
    listing.write_text(f"{a}\n{b}\n{thin}\n")
    out = tmp_path / "out"
    assert main(["predict", str(listing), "-m", str(serve_model_file), "-o", str(out), "--save", "labels"]) == 1
    printed = capsys.readouterr()
    assert "2 image(s) segmented, 1 failed" in printed.out and "aspect ratio" in printed.err  # skips: stderr
    written = sorted(str(p.relative_to(out / "labels")) for p in (out / "labels").rglob("*.png"))
    assert written == ["a/img.png", "b/img.png"]


def test_a_folder_with_clashing_names_is_refused_listing_them(tmp_path, serve_model_file, capsys):
    _image(tmp_path / "in" / "img.jpg", seed=1)
    _image(tmp_path / "in" / "img.png", seed=2)
    assert main(["predict", str(tmp_path / "in"), "-m", str(serve_model_file), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "img.jpg" in err and "img.png" in err and not (tmp_path / "out").exists()


def test_recursive_glob_skips_symlinked_folders_and_duplicates(tmp_path):
    _image(tmp_path / "L" / "a" / "x.png")
    os.symlink(tmp_path / "L", tmp_path / "L" / "a" / "loop")  # a loop: ** used to list forever
    os.symlink(tmp_path / "L" / "a" / "x.png", tmp_path / "L" / "y.png")  # the same file under a second name
    assert list_sources(f"{tmp_path}/L/**/*.png") == [tmp_path / "L" / "a" / "x.png"]
    with pytest.raises(InputError):
        list_sources(f"{tmp_path}/L/**/*.jpg")
