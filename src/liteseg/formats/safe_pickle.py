"""A restricted unpickler for Paddle files: it admits numpy arrays and plain containers, nothing else."""
from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any

from ..errors import FormatError, UnsafePickleError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("builtins", "tuple"),
    # Protocol-2 pickles written by Python 3 rebuild bytes as _codecs.encode(str, 'latin1'): pure, no side effects.
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle._Unpickler):
    """Refuses every global outside ``_ALLOWED`` (so ``os.system`` & co. are never even imported)."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self._source}: refusing to load: the pickle asks for '{module}.{name}', which Paddle weight "
                f"files never contain. The file may be malicious or is not a Paddle checkpoint; do not load it "
                f"with plain pickle."
            )
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; clear errors for missing or damaged files."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file")
    with open(path, "rb") as f:
        return loads_pickle(f.read(), path)


def loads_pickle(data: bytes, path: str = "<bytes>") -> Any:
    """Unpickle bytes with :class:`RestrictedUnpickler`; ``path`` only names the source in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError,
            UnicodeDecodeError, MemoryError, OverflowError, RecursionError, struct.error) as e:
        raise FormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e}); the file is truncated or "
                          f"corrupt, re-download or re-export it") from None
