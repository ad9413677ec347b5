"""Frames piped on stdin: MJPEG (concatenated JPEGs) or Y4M (YUV4MPEG2), e.g. ``ffmpeg ... -f mjpeg -``."""
from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..errors import InputError

_CHUNK = 1 << 16
_HINT = "pipe MJPEG or Y4M, e.g. ffmpeg -i SRC -f mjpeg - | liteseg predict -"


def open_stdin_reader(stream: BinaryIO) -> MjpegReader | Y4mReader:
    """A reader for whichever of the two formats ``stream`` starts with (blocks until its first bytes)."""
    head = stream.read(2)
    if head == b"\xff\xd8":
        return MjpegReader(stream, head)
    if head == b"YU":
        return Y4mReader(stream, head)
    raise InputError(f"stdin: {'nothing was piped' if not head else 'neither MJPEG nor Y4M'}; {_HINT}")


class MjpegReader:
    """Concatenated JPEGs: each image is cut at its EOI marker (the segment structure is followed, so thumbnails
    inside EXIF and progressive scans do not end a frame early) and decoded with Pillow."""

    def __init__(self, stream: BinaryIO, head: bytes = b"") -> None:
        self.stream, self.buffer = stream, bytearray(head)

    def read(self) -> np.ndarray | None:
        """The next frame as RGB uint8, or None at the end of the stream."""
        while True:
            start = self.buffer.find(b"\xff\xd8")
            end = _jpeg_end(self.buffer, start) if start >= 0 else None
            if end is not None:
                data = bytes(self.buffer[start:end])
                del self.buffer[:end]
                try:
                    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                except OSError as e:
                    raise InputError(f"stdin: a broken JPEG in the MJPEG stream ({e}); {_HINT}") from None
            chunk = _read_some(self.stream)
            if not chunk:
                return None
            self.buffer += chunk

    def close(self) -> None:
        """Nothing to release (stdin belongs to the process)."""


def _read_some(stream: BinaryIO) -> bytes:
    read1 = getattr(stream, "read1", None)
    return read1(_CHUNK) if read1 is not None else stream.read(_CHUNK)


def _jpeg_end(buf: bytearray, start: int) -> int | None:
    """Index just past the EOI of the JPEG starting at ``start``, or None while it is incomplete."""
    pos, n = start + 2, len(buf)
    while pos + 1 < n:
        if buf[pos] != 0xFF:
            raise InputError(f"stdin: corrupt JPEG segment in the MJPEG stream; {_HINT}")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            pos += 2
            continue
        if pos + 3 >= n:
            return None
        pos += 2 + (buf[pos + 2] << 8 | buf[pos + 3])
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while True:
                pos = buf.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return None
                if buf[pos + 1] == 0 or 0xD0 <= buf[pos + 1] <= 0xD7:
                    pos += 2
                    continue
                break
    return None


class Y4mReader:
    """YUV4MPEG2: 4:2:0, 4:2:2, 4:4:4 or mono 8-bit frames converted to RGB (BT.601, limited range unless the
    header says ``XCOLORRANGE=FULL``)."""

    def __init__(self, stream: BinaryIO, head: bytes = b"") -> None:
        self.stream = stream
        line = head + stream.readline()
        if not line.startswith(b"YUV4MPEG2 "):
            raise InputError(f"stdin: not a Y4M header ({line[:40]!r}); {_HINT}")
        tags = {t[:1]: t[1:] for t in line.split()[1:]}
        self.width, self.height = int(tags.get(b"W", 0)), int(tags.get(b"H", 0))
        chroma = tags.get(b"C", b"420jpeg").decode()
        self.full_range = b"XCOLORRANGE=FULL" in line.split()
        subsampling = {"420": (2, 2), "422": (1, 2), "444": (1, 1), "mono": None}
        key = chroma[:4] if chroma.startswith("mono") else chroma[:3]
        if key not in subsampling or chroma.endswith(("p10", "p12", "p16")) or self.width <= 0 or self.height <= 0:
            raise InputError(f"stdin: unsupported Y4M stream ({line.strip()[:80].decode(errors='replace')}); "
                             f"use 8-bit 4:2:0 (ffmpeg -pix_fmt yuv420p -f yuv4mpegpipe -)")
        self.sub = subsampling[key]
        self.chroma_hw = (0, 0) if self.sub is None else (-(-self.height // self.sub[0]), -(-self.width // self.sub[1]))

    def read(self) -> np.ndarray | None:
        """The next frame as RGB uint8, or None at the end of the stream."""
        header = self.stream.readline()
        if not header:
            return None
        if not header.startswith(b"FRAME"):
            raise InputError(f"stdin: a Y4M frame header is missing ({header[:20]!r})")
        h, w = self.height, self.width
        ch, cw = self.chroma_hw
        data = _read_exactly(self.stream, h * w + 2 * ch * cw)
        if data is None:
            return None
        y = np.frombuffer(data, np.uint8, h * w).reshape(h, w).astype(np.float32)
        if self.sub is None:
            u = v = np.full((h, w), 128.0, dtype=np.float32)
        else:
            planes = np.frombuffer(data, np.uint8, 2 * ch * cw, h * w).reshape(2, ch, cw).astype(np.float32)
            u, v = (p.repeat(self.sub[0], 0).repeat(self.sub[1], 1)[:h, :w] for p in planes)
        return _yuv_to_rgb(y, u, v, self.full_range)

    def close(self) -> None:
        """Nothing to release (stdin belongs to the process)."""


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    parts, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None  # a truncated last frame ends the stream
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, full_range: bool) -> np.ndarray:
    """BT.601 YCbCr -> RGB uint8."""
    if full_range:
        luma, cb, cr = y, u - 128.0, v - 128.0
    else:
        luma, cb, cr = (y - 16.0) * (255 / 219), (u - 128.0) * (255 / 224), (v - 128.0) * (255 / 224)
    rgb = np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], axis=-1)
    return rgb.round().clip(0, 255).astype(np.uint8)
