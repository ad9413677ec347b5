"""Turning what users pass (paths, folders, globs, list files, videos, PIL images, arrays) into RGB uint8 frames."""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from ..errors import InputError, install_hint
from ..images import pil_to_rgb, read_image, to_rgb

log = logging.getLogger("liteseg")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def as_rgb(obj: Any, channel_order: str = "rgb") -> tuple[np.ndarray, list[str], str]:
    """Path, PIL image or array -> (RGB uint8, notes, name)."""
    if isinstance(obj, (str, os.PathLike)):
        rgb, notes = read_image(obj)
        return rgb, notes, os.fspath(obj)
    if isinstance(obj, Image.Image):
        rgb, notes = pil_to_rgb(obj)
        return rgb, notes, "image"
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):  # torch tensor, HWC
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        rgb, notes = to_rgb(obj, "array", channel_order)
        return rgb, notes, "array"
    raise InputError(f"cannot read an image from a {type(obj).__name__}; pass a path, PIL image or HWC array")


@dataclass
class Frame:
    """One unit of work for ``predict``: an image (or an error) and where its outputs go."""

    name: str  # relative output path without suffix, e.g. "seq1/0001" or "video/000012"
    source: str
    image: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    video: str | None = None  # set for video frames
    fps: float = 0.0


def is_glob(text: str) -> bool:
    """Whether ``text`` is a glob pattern (has ``*``, ``?`` or ``[``)."""
    return any(ch in text for ch in "*?[")


def list_sources(source: str | os.PathLike) -> list[Path]:
    """Expand an image / folder (recursive, sorted) / glob / list file / video into file paths."""
    text = os.fspath(source)
    if is_glob(text) and not Path(text).exists():
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: the pattern matches no files")
        return files
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        if not files:
            raise InputError(f"{path}: the folder holds no images or videos ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if path.suffix.lower() == ".txt":
        files = []
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                entry = Path(line.split()[0])
                files.append(entry if entry.is_absolute() else path.parent / entry)
        if not files:
            raise InputError(f"{path}: the list file names no images")
        return files
    return [path]


def _relative_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root).with_suffix(""))
        except ValueError:
            pass
    return path.stem


def output_names(source: str | os.PathLike, files: list[Path]) -> list[str]:
    """The output name of each file (its path under a ``source`` folder, else its stem), as :func:`iter_frames`."""
    root = Path(source) if Path(source).is_dir() else None
    return [_relative_name(path, root) for path in files]


def iter_frames(source: str | os.PathLike, files: list[Path] | None = None) -> Iterator[Frame]:
    """Frames of every image and video under ``source``, decoded one at a time (nothing is held).

    Unreadable files yield a Frame with ``error``. ``files``: ``list_sources(source)`` when the caller has it.
    """
    files = list_sources(source) if files is None else files
    root = Path(source) if Path(source).is_dir() else None
    for path in files:
        name = _relative_name(path, root)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            yield from iter_video(path, name)
            continue
        try:
            rgb, notes = read_image(path)
            yield Frame(name, str(path), rgb, tuple(notes))
        except InputError as e:
            yield Frame(name, str(path), error=str(e))


def video_frame_count(path: Path) -> int:
    """The frame count a video announces (0 when unknown or OpenCV is missing)."""
    try:
        import cv2
    except ImportError:
        return 0
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()


def iter_video(path: Path, name: str) -> Iterator[Frame]:
    """Frames of a video file (OpenCV); a video that ends before its announced length is reported."""
    try:
        import cv2
    except ImportError:
        raise InputError(f"{path}: reading videos needs OpenCV: {install_hint('video')}") from None
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        yield Frame(name, str(path), error=f"{path}: cannot open the video (unsupported codec or not a video)")
        return
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
    index = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            yield Frame(f"{name}/{index:06d}", f"{path}#{index}", np.ascontiguousarray(bgr[:, :, ::-1]),
                        video=str(path), fps=fps)
    finally:
        cap.release()
    if index == 0:
        yield Frame(name, str(path), error=f"{path}: the video has no readable frames")
    elif expected and index < expected - 1:  # containers may over-count by one
        log.warning("%s: the video ended early, after %d of %d frames (truncated file?)", path, index, expected)
