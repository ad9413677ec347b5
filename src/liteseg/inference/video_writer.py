"""Side-by-side ``.mp4`` outputs that are either published whole or not at all.

Frames go to a temporary file beside the target; :meth:`VideoWriter.close` counts them back and renames the file
into place, :meth:`VideoWriter.abort` (a failed run) removes it. OpenCV is imported on the first frame.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import atomic_path, write_error
from .inputs import video_frame_count


class _Aborted(Exception):
    """Passed into the temporary file's context to remove it."""


class VideoWriter:
    """An .mp4 at ``fps`` (25 when unknown) that appears under ``path`` only once it reads back in full."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path, self.fps = Path(path), fps or 25.0
        self.frames = 0
        self.published = False
        self._writer: Any = None
        self._ctx: Any = None
        self._tmp: Path | None = None

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame (the first one fixes the size)."""
        import cv2

        if self._writer is None:
            self._ctx = atomic_path(self.path)
            self._tmp = self._ctx.__enter__()
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def close(self) -> None:
        """Finish and publish the file; OpenCV ignores failed writes, so the frames are counted back first."""
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        try:
            self._writer.release()
            found = video_frame_count(self._tmp)
            if found != self.frames:
                raise write_error(self.path, f"the video reads back {found} of {self.frames} frames")
        except BaseException as e:
            ctx.__exit__(type(e), e, e.__traceback__)
            raise
        ctx.__exit__(None, None, None)
        self.published = True

    def abort(self) -> None:
        """Drop the file: nothing is published under ``path``."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            self._writer.release()
            ctx.__exit__(_Aborted, _Aborted(), None)


class MeasuredRateVideo:
    """A :class:`VideoWriter` played at the rate frames are processed (live sources): the first frames are held
    until that rate is measured (the container's frame rate is fixed when it is opened)."""

    WARMUP = 8

    def __init__(self, path: str | Path) -> None:
        self.path, self.fps, self.frames = Path(path), 0.0, 0
        self._pending: list[np.ndarray] = []
        self._times: list[float] = []
        self._writer: VideoWriter | None = None

    @property
    def published(self) -> bool:
        """Whether the file was closed and renamed into place."""
        return self._writer is not None and self._writer.published

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame."""
        self.frames += 1
        if self._writer is not None:
            self._writer.write(rgb)
            return
        self._pending.append(rgb)
        self._times.append(time.perf_counter())
        if len(self._pending) >= self.WARMUP:
            self._open()

    def _open(self) -> None:
        times = self._times[1:] if len(self._times) > 2 else self._times  # the first call warms the model up
        span = times[-1] - times[0]
        self.fps = round((len(times) - 1) / span, 2) if span > 0 else 1.0
        self._writer = VideoWriter(self.path, self.fps)
        for rgb in self._pending:
            self._writer.write(rgb)
        self._pending = []

    def close(self) -> None:
        """Publish what was written (held frames too)."""
        if self._writer is None and self._pending:
            self._open()
        if self._writer is not None:
            self._writer.close()

    def abort(self) -> None:
        """Drop the file."""
        self._pending = []
        if self._writer is not None:
            self._writer.abort()
