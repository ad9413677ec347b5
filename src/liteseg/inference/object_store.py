"""Images in an object store (``s3://bucket/prefix``, any URI pyarrow's filesystems open) for ``predict --engine
ray``: the driver lists them, each worker reads its own objects, decoded by :func:`liteseg.images.read_image_bytes`.

The endpoint, region and credentials come from the URI's query (``?endpoint_override=HOST:PORT&scheme=http``) or
from the environment of every process (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), as pyarrow reads them.
pyarrow comes with the ``ray`` extra (``ray[data]``).
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ..errors import InputError, LitesegError, install_hint
from ..images import read_image_bytes
from .inputs import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Frame


def is_uri(source: str) -> bool:
    """Whether ``source`` names an object store (``scheme://...``) rather than a local path."""
    return "://" in source


class ObjectStore:
    """The filesystem of a source URI and the key (``bucket/prefix``) it names; picklable (opened again on load)."""

    def __init__(self, uri: str) -> None:
        try:
            from pyarrow import fs
        except ImportError as e:
            raise LitesegError(f"{uri}: object stores need pyarrow ({e}): {install_hint('ray')}") from None
        self.uri, self._fs = uri, fs
        try:
            self.filesystem, self.root = fs.FileSystem.from_uri(uri)
        except (ValueError, OSError) as e:  # pyarrow.ArrowInvalid is a ValueError
            raise InputError(f"{uri}: cannot open this object store ({e}); check the URI, its endpoint and "
                             f"credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)") from None
        self.scheme = uri.split("://", 1)[0]

    def __reduce__(self) -> tuple[Any, ...]:
        return ObjectStore, (self.uri,)

    def name(self, key: str) -> str:
        """``scheme://key``: how messages name an object."""
        return f"{self.scheme}://{key}"

    def list_images(self) -> tuple[list[str], list[str]]:
        """The image keys the URI names (one object, or every image under a prefix, sorted) and their output names
        (the key under the prefix without its suffix)."""
        fs = self._fs
        try:
            info = self.filesystem.get_file_info(self.root)
            if info.type == fs.FileType.File:
                return [self.root], [PurePosixPath(self.root).stem]
            if info.type != fs.FileType.Directory:
                raise InputError(f"{self.uri}: no such object or prefix")
            found = self.filesystem.get_file_info(fs.FileSelector(self.root, recursive=True))
        except OSError as e:
            raise InputError(f"{self.uri}: cannot list it ({e}); check the endpoint and credentials") from None
        keys = sorted(i.path for i in found if i.type == fs.FileType.File
                      and PurePosixPath(i.path).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        if not keys:
            raise InputError(f"{self.uri}: the prefix holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return keys, [str(PurePosixPath(k).relative_to(self.root).with_suffix("")) for k in keys]

    def read(self, key: str, name: str) -> Frame:
        """The object ``key`` decoded, as a Frame named ``name`` (with ``error`` when it cannot be read)."""
        source = self.name(key)
        try:
            with self.filesystem.open_input_file(key) as f:
                data = f.readall()
            rgb, notes = read_image_bytes(data, source)
        except OSError as e:
            return Frame(name, source, error=f"{source}: cannot read it ({e})")
        except InputError as e:
            return Frame(name, source, error=str(e))
        return Frame(name, source, rgb, tuple(notes))
