"""A pre-scan of pickle opcodes that refuses deep nesting and non-scalar dict keys before any unpickler runs.

Unpicklers build objects iteratively, but hashing a dict key (or deallocating, printing, comparing a value)
recurses in C: ``b'\\x80\\x02})' + b'\\x85' * 200000 + b'K\\x01s.'`` (a tuple nested 200,000 deep used as a key)
crashed both Python's unpickler and torch's weights-only loader with SIGSEGV. This scan walks the opcodes in a
loop (no recursion), tracking only each stack item's nesting depth and whether it is a scalar, so it costs a
fraction of the load and needs no memory proportional to the nesting.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

from ..errors import FormatError

MAX_DEPTH = 100  # Paddle and torch weight files nest a handful of levels
_SCALARS = {pickletools.pyint, pickletools.pylong, pickletools.pyfloat, pickletools.pystring,
            pickletools.pybytes, pickletools.pyunicode, pickletools.pybool, pickletools.pynone,
            pickletools.pybytes_or_str}
_IN_PLACE = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_GET = {"GET", "BINGET", "LONG_BINGET"}
_SCALAR_CALLS = {"_codecs encode"}  # protocol-2 bytes: _codecs.encode(str, 'latin1')


class _Item:
    __slots__ = ("depth", "scalar", "text")

    def __init__(self, depth: int = 0, scalar: bool = False, text: str | None = None) -> None:
        self.depth, self.scalar, self.text = depth, scalar, text


_MARK = _Item()


def scan_pickle(data: bytes, source: str) -> None:
    """Raise :class:`FormatError` if the first pickle in ``data`` nests deeper than :data:`MAX_DEPTH` or hashes
    a non-scalar (a dict key or set member that is a container)."""
    _scan(io.BytesIO(data), source)


def scan_torch_file(path: str | Path) -> None:
    """Pre-scan every pickle of a ``torch.save`` file (zip archive or legacy format) before ``torch.load``; what
    is not a pickle at all is left to torch to report."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(".pkl"):
                        _scan(io.BytesIO(archive.read(name)), f"{path} ({name})", strict=False)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise FormatError(f"{path}: a damaged torch archive ({e}); re-download or re-save it") from None
        return
    with open(path, "rb") as f:  # legacy format: magic, protocol, system info, the data, then the storage keys
        for _ in range(5):
            if not f.peek(1) or not _scan(f, str(path), strict=False):
                break


def _scan(stream: io.IOBase, source: str, strict: bool = True) -> bool:
    """Walk one pickle; False (or, if ``strict``, a FormatError) when it is not a readable pickle."""
    stack: list[_Item] = []
    memo: dict[object, _Item] = {}
    try:
        for op, arg, pos in pickletools.genops(stream):
            name = op.name
            if name == "STOP":
                return True
            if name == "MARK":
                stack.append(_MARK)
            elif name in _GET:
                stack.append(memo.get(arg) or _Item())
            elif name in _PUT:
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name == "DUP":
                stack.append(stack[-1])
            elif not op.stack_before:  # a constant, an empty container, a GLOBAL (its text is arg), PROTO, FRAME
                if op.stack_after:
                    stack.append(_Item(0, op.stack_after[0] in _SCALARS,
                                       arg if isinstance(arg, str) and len(arg) < 64 else None))
            else:
                _apply(op, arg, pos, stack, source)
    except (ValueError, IndexError, EOFError) as e:  # bad opcode, truncated data, stack underflow
        if not strict:
            return False
        raise FormatError(f"{source}: not a readable pickle ({type(e).__name__}: {e}); the file is truncated or "
                          f"corrupt, re-download or re-export it") from None
    if not strict:
        return False
    raise FormatError(f"{source}: not a readable pickle (no STOP opcode); the file is truncated")


def _apply(op: pickletools.OpcodeInfo, arg: object, pos: int, stack: list[_Item], source: str) -> None:
    before = op.stack_before
    fixed: list[_Item] = []
    sliced: list[_Item] = []
    if pickletools.markobject in before:
        while stack[-1] is not _MARK:
            sliced.append(stack.pop())
        sliced.reverse()
        stack.pop()
        count = before.index(pickletools.markobject)
    else:
        count = len(before)
    for _ in range(count):
        fixed.append(stack.pop())
    fixed.reverse()
    name = op.name
    if name == "SETITEM":
        _hashable(fixed[1:2], op, pos, source)
    elif name in ("SETITEMS", "DICT"):
        _hashable(sliced[0::2], op, pos, source)
    elif name in ("ADDITEMS", "FROZENSET"):
        _hashable(sliced, op, pos, source)
    children = fixed + sliced
    if name in _IN_PLACE:
        container = children[0]
        container.depth = max([container.depth] + [c.depth + 1 for c in children[1:]])
        _check_depth(container.depth, op, pos, source)
        stack.append(container)
        return
    depth = max((c.depth for c in children), default=-1) + 1
    _check_depth(depth, op, pos, source)
    for kind in op.stack_after:
        if kind is pickletools.markobject:
            stack.append(_MARK)
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            text = arg if name == "GLOBAL" else " ".join(str(c.text) for c in children)
            stack.append(_Item(depth, text=str(text)))
        else:
            scalar = (not children and kind in _SCALARS) or (name == "REDUCE" and children[0].text in _SCALAR_CALLS)
            stack.append(_Item(depth, scalar, arg if isinstance(arg, str) and len(arg) < 64 else None))


def _hashable(keys: list[_Item], op: pickletools.OpcodeInfo, pos: int, source: str) -> None:
    if not all(k.scalar for k in keys):
        raise FormatError(f"{source}: refusing to load: the pickle uses a container as a dict key or set member "
                          f"({op.name} at byte {pos}), which weight files never do; the file is corrupt or crafted")


def _check_depth(depth: int, op: pickletools.OpcodeInfo, pos: int, source: str) -> None:
    if depth > MAX_DEPTH:
        raise FormatError(f"{source}: refusing to load: the pickle nests containers more than {MAX_DEPTH} deep "
                          f"({op.name} at byte {pos}), which weight files never do; the file is corrupt or crafted")
