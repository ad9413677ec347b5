"""Live sources (camera index, rtsp/rtmp/http(s) streams, ``-`` for stdin, ``.streams`` lists) with bounded latency.

Each source is read by its own thread that keeps only the newest frame: a model slower than the camera processes
the most recent frame every time and the frames in between are dropped and counted, so a result is never more
than one inference behind. A lost network stream or camera is reopened with exponential back-off.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol
from urllib.parse import urlsplit

import numpy as np

from ..errors import InputError, install_hint
from .stdin_frames import open_stdin_reader

if TYPE_CHECKING:
    from .segmenter import SegResult, Segmenter

log = logging.getLogger("liteseg")

SCHEMES = ("rtsp", "rtmp", "http", "https")
LIST_SUFFIX = ".streams"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
OPEN_TIMEOUT_S = 5.0  # connecting, and a stalled stream counts as lost after this long
BACKOFF = (0.5, 8.0)  # first and longest wait between reconnection attempts (seconds)


class Capture(Protocol):
    """What a reader thread reads from: RGB frames until None (ended or lost)."""

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


def is_live(source: Any) -> bool:
    """Whether ``source`` names a live source: ``-``, a camera index, a ``scheme://`` URL or a ``.streams`` file."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    return text == "-" or text.isdigit() or bool(_URL.match(text)) or text.endswith(LIST_SUFFIX)


def redact(source: str) -> str:
    """``source`` without a password (``rtsp://user:***@host/...``), for messages and folder names."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", source)


def check_source(text: str) -> str:
    """``text`` if it is a well-formed live source, else one clear :class:`InputError`."""
    if text == "-" or text.isdigit():
        return text
    match = _URL.match(text)
    if not match:
        raise InputError(f"{text}: not a live source; use a camera index (0), rtsp://, rtmp://, http(s):// or -")
    scheme = match.group(1).lower()
    if scheme not in SCHEMES:
        raise InputError(f"{redact(text)}: unsupported scheme {scheme}://; live sources are "
                         f"{', '.join(s + '://' for s in SCHEMES)}, a camera index or - (stdin)")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise InputError(f"{redact(text)}: bad URL ({e})") from None
    if not parts.hostname or any(c.isspace() for c in text):
        raise InputError(f"{redact(text)}: bad URL (no host name, or spaces); e.g. rtsp://192.168.1.10:554/stream")
    return text


def parse_sources(source: str | os.PathLike) -> list[str]:
    """The live sources ``source`` names: itself, or each line of a ``.streams`` file (``#`` comments)."""
    text = os.fspath(source)
    if not text.endswith(LIST_SUFFIX):
        return [check_source(text)]
    path = Path(text)
    if not path.is_file():
        raise InputError(f"{path}: no such .streams file")
    lines = [line.strip() for line in path.read_text().splitlines()]
    sources = [line for line in lines if line and not line.startswith("#")]
    if not sources:
        raise InputError(f"{path}: the .streams file names no sources (one per line)")
    if sources.count("-") > 1 or any(s.endswith(LIST_SUFFIX) for s in sources):
        raise InputError(f"{path}: stdin (-) may appear once, and a .streams file cannot name another")
    return [check_source(s) for s in sources]


class _CvCapture:
    """An OpenCV capture (camera or FFmpeg URL) returning RGB."""

    def __init__(self, source: str) -> None:
        try:
            import cv2
        except ImportError:
            raise InputError(f"{redact(source)}: cameras and network streams need OpenCV: "
                             f"{install_hint('video')}") from None
        # OpenCV's and FFmpeg's own messages (connection refused, stream timeout) are silenced: the InputError
        # below and the reader's reconnection messages say it once, in words. FFmpeg's level is read when OpenCV
        # first uses it, so this applies to processes that open a stream before decoding any video file.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        if source.isdigit():
            self.cap = cv2.VideoCapture(int(source))
        else:
            ms = int(OPEN_TIMEOUT_S * 1000)
            self.cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not self.cap.isOpened():
            self.cap.release()
            if source.isdigit():
                raise InputError(f"camera {source}: no camera at this index (or it is busy); check /dev/video* "
                                 "or try another index")
            raise InputError(f"{redact(source)}: cannot open the stream (nothing answers within {OPEN_TIMEOUT_S:g} s, "
                             "a wrong path, or a format FFmpeg cannot read); check the URL, e.g. with ffplay")

    def read(self) -> np.ndarray | None:
        ok, bgr = self.cap.read()
        return np.ascontiguousarray(bgr[:, :, ::-1]) if ok and bgr is not None else None

    def close(self) -> None:
        self.cap.release()


def open_capture(source: str) -> Capture:
    """Open one live source, or raise one clear :class:`InputError` saying why it cannot be read."""
    if source == "-":
        return open_stdin_reader(sys.stdin.buffer)
    return _CvCapture(source)


@dataclass
class LiveFrame:
    """A frame as the reader received it: ``index`` counts every frame received from the source (from 1)."""

    image: np.ndarray
    index: int
    received: float  # time.perf_counter() when the reader got it
    source_id: int
    source: str


class LiveReader:
    """A thread reading one source; :meth:`take` returns the newest frame (older unread ones are dropped).

    ``keep_all``: block the reader instead of dropping (stdin redirected from a file: every frame counts).
    """

    def __init__(self, source: str, source_id: int = 0, wake: threading.Condition | None = None,
                 opener: Callable[[str], Capture] = open_capture, keep_all: bool = False) -> None:
        self.source, self.source_id, self.opener, self.keep_all = source, source_id, opener, keep_all
        self.capture: Capture | None = opener(source)  # the first open fails loudly
        self.received = self.dropped = self.reconnects = 0
        self.counted_from = 0  # frames received before :meth:`start_counting` (while the model loaded, say)
        self._delay = BACKOFF[0]  # grows while reconnections bring no frames
        self.ended = False
        self.error: BaseException | None = None
        self._latest: LiveFrame | None = None
        self._wake = wake or threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"liteseg-live-{source_id}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return redact(self.source)

    @property
    def has_frame(self) -> bool:
        return self._latest is not None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                image = self.capture.read() if self.capture is not None else None
                if image is None:
                    if self.source == "-" or not self._reopen():
                        return
                    continue
                self._delay = BACKOFF[0]
                with self._wake:
                    while self.keep_all and self._latest is not None and not self._stop.is_set():
                        self._wake.wait(0.1)
                    if self._latest is not None:
                        self.dropped += 1
                    self.received += 1
                    self._latest = LiveFrame(image, self.received, time.perf_counter(), self.source_id, self.source)
                    self._wake.notify_all()
        except BaseException as e:  # noqa: BLE001 - raised in the consuming thread by take()
            self.error = e
        finally:
            if self.capture is not None:
                self.capture.close()
            with self._wake:
                self.ended = True
                self._wake.notify_all()

    def _reopen(self) -> bool:
        """Reopen a lost source with exponential back-off; False when asked to stop first."""
        if self.capture is not None:
            self.capture.close()
            self.capture = None
        log.warning("%s: stream lost after %d frame(s); reconnecting in %.1f s", self.name, self.received,
                    self._delay)
        while not self._stop.wait(self._delay):
            self._delay = min(self._delay * 2, BACKOFF[1])
            try:
                self.capture = self.opener(self.source)
            except InputError:
                log.warning("%s: still unreachable; next try in %.1f s", self.name, self._delay)
                continue
            self.reconnects += 1
            log.warning("%s: reconnected", self.name)
            return True
        return False

    def start_counting(self) -> None:
        """Count received and dropped frames from now on (the newest frame waiting is kept)."""
        with self._wake:
            self.dropped = 0
            self.counted_from = self.received - (self._latest is not None)

    def take(self) -> LiveFrame | None:
        """The newest unread frame, or None if there is none now; re-raises the reader thread's error."""
        with self._wake:
            if self.error is not None:
                raise self.error
            frame, self._latest = self._latest, None
            if frame is not None:
                self._wake.notify_all()
            return frame

    def stop(self) -> None:
        """Ask the thread to stop (it releases the capture; a blocked read ends within the read timeout)."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()

    def close(self) -> None:
        """Stop the thread and wait for it."""
        self.stop()
        self._thread.join(timeout=OPEN_TIMEOUT_S + 1)


class LiveSources:
    """Readers for several sources, taken in turn (a context manager that stops them on exit)."""

    def __init__(self, sources: list[str], opener: Callable[[str], Capture] = open_capture) -> None:
        self.wake = threading.Condition()
        self.readers: list[LiveReader] = []
        try:
            for i, source in enumerate(sources):
                keep_all = source == "-" and _stdin_is_file()
                self.readers.append(LiveReader(source, i, self.wake, opener, keep_all))
        except BaseException:
            self.close()
            raise

    def frames(self, max_frames: int | None = None, duration: float | None = None) -> Iterator[LiveFrame]:
        """The newest frame of each source in turn, as they arrive, until every source ended or a limit.

        Received and dropped frames are counted from the first call (not while, say, the model loaded)."""
        start, count, turn = time.perf_counter(), 0, 0
        for reader in self.readers:
            reader.start_counting()
        while max_frames is None or count < max_frames:
            if duration is not None and time.perf_counter() - start >= duration:
                return
            frame = None
            for k in range(len(self.readers)):
                frame = self.readers[(turn + k) % len(self.readers)].take()
                if frame is not None:
                    turn = (turn + k + 1) % len(self.readers)
                    break
            if frame is None:
                with self.wake:
                    done = all(r.ended and not r.has_frame for r in self.readers)
                    if not done:
                        self.wake.wait(0.05)
                if done:
                    for reader in self.readers:
                        reader.take()  # raises a reader's error, if one failed
                    return
                continue
            count += 1
            yield frame

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.readers)

    @property
    def received(self) -> int:
        return sum(r.received - r.counted_from for r in self.readers)

    def close(self) -> None:
        for reader in self.readers:
            reader.stop()  # all at once: each may be blocked in a read for up to the read timeout
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> LiveSources:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _stdin_is_file() -> bool:
    try:
        import stat

        return stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


class LiveStats:
    """Per-frame latency (reader receipt to result written), model time and counts for progress lines."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.latencies: list[float] = []
        self.model_times: list[float] = []

    def add(self, frame: LiveFrame, model_s: float) -> float:
        """Record a frame whose result was just written; returns its latency in seconds."""
        latency = time.perf_counter() - frame.received
        self.latencies.append(latency)
        self.model_times.append(model_s)
        return latency

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else 0.0

    @property
    def model_fps(self) -> float:
        """Frames per second of the model call alone (prepare + forward + finish)."""
        total = sum(self.model_times)
        return len(self.model_times) / total if total > 0 else 0.0

    @property
    def processed_fps(self) -> float:
        """Frames per second processed end to end (what the saved video plays at)."""
        elapsed = time.perf_counter() - self.start
        return len(self.latencies) / elapsed if elapsed > 0 else 0.0

    def line(self, sources: LiveSources) -> str:
        return (f"latency p50 {self.percentile_ms(50):.0f} ms p95 {self.percentile_ms(95):.0f} ms, "
                f"model {self.model_fps:.2f} fps, {sources.dropped} dropped")


def segment_live(seg: Segmenter, frames: Iterator[LiveFrame]) -> Iterator[tuple[LiveFrame, SegResult, float]]:
    """``(frame, result, model seconds)`` for each frame, segmented as soon as it is taken."""
    for frame in frames:
        t0 = time.perf_counter()
        batch = seg.prepare([frame.image], [frame])
        result = seg.finish(batch, seg.forward(batch))[0]
        result.source = f"{redact(frame.source)}#{frame.index}"
        yield frame, result, time.perf_counter() - t0
