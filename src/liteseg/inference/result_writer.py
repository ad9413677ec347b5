"""``ResultWriter``: the one place segmentation results become files (Python API, CLI, Ray workers, live runs).

Every file is encoded in memory (:mod:`liteseg.inference.output_encoding`: one set of PNG/JPEG settings, shared
with the HTTP server) and written atomically; side-by-side videos are published when the writer closes normally
and removed when the run fails (:mod:`liteseg.inference.video_writer`).

>>> with ResultWriter("out", kinds=("labels", "overlay")) as writer:       # doctest: +SKIP
...     for result in segmenter.stream("clip.mp4"):
...         writer.write(result)                          # out/labels/clip/000000.png, ...
...         writer.add_video_frame("clip", result)        # out/video/clip.mp4, published on exit
"""
from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..utils.io import atomic_write_bytes
from .output_encoding import SUFFIXES, check_kinds, encode, legend_png
from .video_writer import MeasuredRateVideo, VideoWriter
from .visualize import side_by_side

if TYPE_CHECKING:
    from .segmenter import SegResult

DEFAULT_KINDS = ("labels", "color", "overlay")


def default_name(result: SegResult) -> str:
    """An output name from ``result.source``: the file's stem, ``VIDEO/FRAME`` (6 digits) for a video frame
    (``clip.mp4#12`` -> ``clip/000012``), ``result`` without a source."""
    if not result.source:
        return "result"
    base, _, frame = result.source.rpartition("#")
    if base and frame.isdigit():
        return f"{Path(base).stem}/{int(frame):06d}"
    return Path(result.source).stem


class ResultWriter:
    """Writes each result's output ``kinds`` under ``out_dir``, atomically.

    ``folders=True`` (predict's layout): ``OUT/KIND/NAME.SUFFIX``; ``folders=False``: ``OUT/NAME_KIND.SUFFIX``.
    ``num_classes`` checks the kinds against the model up front (Cityscapes ids need 19 classes). Used as a
    context manager, videos are published when the block ends normally and removed when it raises.
    """

    def __init__(self, out_dir: str | os.PathLike, kinds: Sequence[str] = DEFAULT_KINDS, *, alpha: float = 0.5,
                 overwrite: bool = True, folders: bool = True, num_classes: int | None = None) -> None:
        check_kinds(kinds, num_classes)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.out_dir, self.kinds, self.alpha = Path(out_dir), tuple(kinds), alpha
        self.overwrite, self.folders = overwrite, folders
        self.videos: dict[str, VideoWriter | MeasuredRateVideo] = {}

    def path(self, kind: str, name: str) -> Path:
        """Where output ``kind`` of the result named ``name`` (a relative path without suffix) goes."""
        if self.folders:
            return self.out_dir / kind / f"{name}{SUFFIXES[kind]}"
        return self.out_dir / f"{name}_{kind}{SUFFIXES[kind]}"

    def write(self, result: SegResult, name: str | None = None) -> dict[str, Path]:
        """Write every kind of ``result`` (name: :func:`default_name` when None); returns kind -> path."""
        name = name or default_name(result)
        written = {}
        for kind in self.kinds:
            path = self.path(kind, name)
            atomic_write_bytes(path, encode(kind, result, self.alpha), self.overwrite)
            written[kind] = path
        return written

    def write_legend(self, class_names: Sequence[str], palette: Sequence[Sequence[int]]) -> Path:
        """``OUT/legend.png``: the classes and their colours."""
        path = self.out_dir / "legend.png"
        atomic_write_bytes(path, legend_png(class_names, palette))
        return path

    def add_video_frame(self, video: str, result: SegResult, fps: float | None = None,
                        overlay: np.ndarray | None = None) -> None:
        """Append input | overlay side by side to ``OUT/video/VIDEO.mp4`` at ``fps`` (None: the rate frames
        arrive at, for live sources); ``overlay``: the result's overlay when already computed."""
        if result.image is None:
            raise ValueError("this result keeps no input image; call the Segmenter with keep_image=True")
        if video not in self.videos:
            path = self.out_dir / "video" / f"{video}.mp4"
            self.videos[video] = MeasuredRateVideo(path) if fps is None else VideoWriter(path, fps)
        shown = result.overlay(self.alpha) if overlay is None else overlay
        self.videos[video].write(side_by_side(result.image, shown))

    def close(self) -> None:
        """Publish the videos (each one that reads back in full; the first failure is raised after all)."""
        error = None
        for video in self.videos.values():
            try:
                video.close()
            except Exception as e:  # the other videos are still finished
                error = error or e
        if error is not None:
            raise error

    def abort(self) -> None:
        """Remove the unfinished videos: a failed run publishes none."""
        for video in self.videos.values():
            video.abort()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
