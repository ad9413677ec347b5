"""A restricted unpickler for Paddle files: it admits numpy arrays and plain containers, nothing else."""
from __future__ import annotations

import io
import os
import pickle
from typing import Any

from ..errors import FormatError, UnsafePickleError
from .pickle_scan import scan_pickle

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


# Protocol-5 buffer opcodes: Paddle never writes them, and C's unpickler mishandles a corrupt BYTEARRAY8 length
# (MemoryError plus "SystemError: deallocated bytearray object has exported buffers" printed by the interpreter).
_REFUSED_OPCODES = (pickle.BYTEARRAY8, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER)


def _refuse_opcode(self: "RestrictedUnpickler") -> None:
    raise FormatError(f"{self._source}: not a readable pickle (protocol-5 buffer opcode, which Paddle files never "
                      f"contain); the file is truncated or corrupt, re-download or re-export it")


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode is ours to refuse
    """Refuses every global outside ``_ALLOWED`` (so ``os.system`` & co. are never even imported).

    Built on the pure-Python unpickler (about 15 ms slower on a 32 MB checkpoint) so that opcodes Paddle never
    writes are refused before they run.
    """

    dispatch = dict(pickle._Unpickler.dispatch)
    for _op in _REFUSED_OPCODES:
        dispatch[_op[0]] = _refuse_opcode
    del _op

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
    scan_pickle(data, path)  # deep nesting and container keys crash unpicklers in C: refuse them first
    try:
        return RestrictedUnpickler(io.BytesIO(data), path).load()
    except FormatError:
        raise
    except Exception as e:  # a corrupt pickle raises many types (struct.error, KeyError, MemoryError, ...)
        raise FormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e}); the file is truncated or "
                          f"corrupt, re-download or re-export it") from None
