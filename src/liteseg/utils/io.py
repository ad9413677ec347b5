"""Atomic file writes: the bytes go to a temporary file beside the target, are counted, synced, then renamed.

Outputs are encoded into memory first and written here, so a short write (a nearly full disk, a file-size
limit) is seen and reported: encoders such as Pillow's ignore short writes and would publish a truncated file.
Temporary files still being written are removed on SIGTERM too (:func:`remove_temps_on_sigterm`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator

from ..errors import WriteError

_PENDING: set[str] = set()  # temporary files being written, removed on SIGTERM
_SPACE_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Use it only for writers that must write to a path themselves (and check what they wrote); prefer
    :func:`atomic_write_bytes`.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target}: already exists; choose another name or pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    _PENDING.add(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        try:
            yield Path(tmp)
            # mkstemp makes 0600, and some writers replace the file: set the usual permissions now
            os.chmod(tmp, 0o666 & ~umask)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            if e.errno in _SPACE_ERRORS:
                raise write_error(target, f"{e.strerror}") from None
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        _PENDING.discard(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, checking that every byte reached the file before the rename."""
    with atomic_path(path, overwrite) as tmp:
        view = memoryview(data).cast("B")
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            written = 0
            while written < len(view):
                try:
                    n = os.write(fd, view[written:written + (1 << 24)])
                except OSError as e:
                    raise write_error(Path(path), f"{e.strerror} after {written} of {len(view)} bytes") from None
                if n <= 0:
                    raise write_error(Path(path), f"the disk took {written} of {len(view)} bytes")
                written += n
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size != len(view):
            raise write_error(Path(path), f"the file holds {size} of {len(view)} bytes")


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], None], overwrite: bool = True) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        writer(tmp)


def write_error(path: Path, reason: str) -> WriteError:
    """The error for an output that could not be written in full, with the free space where it was going."""
    folder = path.parent if path.parent.exists() else Path(".")
    try:
        space = shutil.disk_usage(folder).free
        free = f"{space / 2**20:.1f} MiB free" if space >= 2**20 else f"{space} bytes free"
    except OSError:
        free = "free space unknown"
    return WriteError(f"{path}: could not be written ({reason}; {free} in {folder.resolve()}); nothing was "
                      f"written under this name: free some space (or raise the file-size limit) and run again")


def remove_temps_on_sigterm() -> None:
    """On SIGTERM, remove the temporary files being written, then end as SIGTERM would (main thread only)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        for tmp in list(_PENDING):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)
