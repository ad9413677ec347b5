"""Paddle 3 PIR programs (``inference.json``): a strict reader and the summary liteseg needs from it.

The JSON holds ``base_code`` (``magic: pir``, ``version``) and one region with one block of ops. Each op has a
shortened name (``p`` = ``builtin.parameter``, ``0.x`` = ``builtin.x``, ``1.x`` = ``pd_op.x``), positional operands
``I`` (``{"%": value id}``, 0 = an absent optional input), typed results ``O`` and attributes ``A``. Only the
versions, ops, attribute and type spellings checked against real exports are accepted; anything else is refused
with a FormatError naming the version and the op, never guessed.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..errors import FormatError

# PIR serialisation versions whose spellings are known to be those below. 1 (Paddle 3.0) and 4 (Paddle 3.3) were
# checked against real exports. Paddle numbers versions by its upgrade patches (paddle/fluid/pir/
# serialize_deserialize/patch/N.yaml upgrades N-1 to N; released versions only in between): 2.yaml changes, of the
# ops below, only pool2d's strides/paddings from int32 to int64 array elements, 3.yaml none of them, 4.yaml
# bilinear_interp's (empty, checked) scale from float to double elements; this reader takes either width, so the
# releases between 3.0 and 3.3 (3.1, 3.2) are read the same way.
SUPPORTED_VERSIONS = {1: "Paddle 3.0", 2: "Paddle 3.1/3.2", 3: "Paddle 3.1/3.2", 4: "Paddle 3.3"}
KNOWN_OPS = frozenset({
    "builtin.parameter", "builtin.combine", "pd_op.data", "pd_op.fetch", "pd_op.conv2d", "pd_op.depthwise_conv2d",
    "pd_op.batch_norm_", "pd_op.relu", "pd_op.sigmoid", "pd_op.add", "pd_op.subtract", "pd_op.multiply",
    "pd_op.concat", "pd_op.pool2d", "pd_op.bilinear_interp", "pd_op.mean", "pd_op.max", "pd_op.reshape",
    "pd_op.cast", "pd_op.shape64", "pd_op.slice", "pd_op.full", "pd_op.full_int_array", "pd_op.scale",
    "pd_op.argmax", "pd_op.softmax",
})
_DIALECTS = {"0": "builtin", "1": "pd_op"}
_DTYPES = {"0.t_f32": "float32", "0.t_i32": "int32", "0.t_i64": "int64", "0.t_ui8": "uint8"}
_MAX_BYTES = 256 << 20
_MAX_OPS = 200_000
_MAX_DIM = 2**31 - 1
_MAX_ATTR_DEPTH = 4


@dataclass(frozen=True)
class PirValue:
    """A value defined by an op: its id, element type (``vector`` for a ``builtin.combine``) and dims."""

    id: int
    dtype: str
    dims: tuple[int, ...] = ()


@dataclass
class PirOp:
    """One op of the block: full name, position, operand ids (0 = absent), results and decoded attributes."""

    name: str
    index: int
    operands: list[int]
    results: list[PirValue]
    attrs: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"op #{self.index} ({self.name})"


@dataclass
class PirProgram:
    """A parsed PIR program: version, ops in order, and the parameter ops as value id -> (name, dtype, dims)."""

    version: int
    ops: list[PirOp]
    parameters: "OrderedDict[int, tuple[str, str, list[int]]]"

    def stored_tensors(self) -> "OrderedDict[str, tuple[str, list[int]]]":
        """The ``.pdiparams`` records in file order (parameter names sorted byte-wise): name -> (dtype, dims)."""
        found = {name: (dtype, dims) for name, dtype, dims in self.parameters.values()}
        return OrderedDict(sorted(found.items(), key=lambda kv: kv[0].encode()))


def is_pir(data: bytes) -> bool:
    """Whether ``data`` looks like a JSON (PIR) program rather than a ProgramDesc protobuf."""
    return data.lstrip()[:1] == b"{"


class _Reader:
    """Type-checked access to the decoded JSON; every problem becomes one FormatError naming the place."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.version: int | None = None

    def fail(self, what: str) -> FormatError:
        version = f" (PIR version {self.version})" if self.version is not None else ""
        return FormatError(f"{self.source}: {what}{version}; not a PIR program liteseg can read (truncated, edited "
                           f"or from an unsupported exporter)")

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(f"{where} is a {type(obj).__name__}, expected an object")
        if key not in obj:
            raise self.fail(f"{where} has no {key!r}")
        return self.check(obj[key], kind, f"{where}.{key}")

    def check(self, value: Any, kind: type | tuple[type, ...], where: str) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(f"{where} is a boolean, expected {'/'.join(k.__name__ for k in kinds)}")
        if not isinstance(value, kinds):
            raise self.fail(f"{where} is a {type(value).__name__}, expected {'/'.join(k.__name__ for k in kinds)}")
        return value

    def ints(self, value: Any, where: str, lo: int = -_MAX_DIM, hi: int = _MAX_DIM) -> list[int]:
        items = self.check(value, list, where)
        for i, v in enumerate(items):
            self.check(v, int, f"{where}[{i}]")
            if not lo <= v <= hi:
                raise self.fail(f"{where}[{i}] = {v} is outside [{lo}, {hi}]")
        return list(items)

    def tensor_type(self, tt: Any, where: str, allow_vector: bool = True) -> tuple[str, tuple[int, ...]]:
        tag = self.get(tt, "#", str, where)
        data = self.get(tt, "D", list, where)
        if tag == "0.t_vec" and allow_vector:
            for i, item in enumerate(data):
                self.tensor_type(item, f"{where}.D[{i}]", allow_vector=False)
            return "vector", ()
        if tag != "0.t_dtensor":
            raise self.fail(f"{where} has the unknown type {tag!r}")
        if len(data) != 5:
            raise self.fail(f"{where}.D has {len(data)} fields, expected 5 (dtype, dims, layout, lod, offset)")
        dtag = self.get(data[0], "#", str, f"{where}.D[0]")
        if dtag not in _DTYPES:
            raise self.fail(f"{where} has the unknown element type {dtag!r}")
        dims = self.ints(data[1], f"{where}.D[1]", lo=-1)
        if len(dims) > 8:
            raise self.fail(f"{where} has {len(dims)} dims")
        self.check(data[2], str, f"{where}.D[2]")
        return _DTYPES[dtag], tuple(dims)

    def attr(self, at: Any, where: str, depth: int = 0) -> Any:
        tag = self.get(at, "#", str, where)
        if "D" not in at:
            raise self.fail(f"{where} has no 'D'")
        value = at["D"]
        if tag == "0.a_bool":
            return self.check(value, bool, where)
        if tag in ("0.a_i32", "0.a_i64"):
            return self.check(value, int, where)
        if tag in ("0.a_f32", "0.a_f64"):
            return float(self.check(value, (int, float), where))
        if tag in ("0.a_str", "1.a_dtype"):
            return self.check(value, str, where)
        if tag == "1.a_intarray":
            return self.ints(value, where)
        if tag == "1.a_place":
            return self.check(value, list, where)
        if tag == "0.a_array":
            if depth >= _MAX_ATTR_DEPTH:
                raise self.fail(f"{where} nests arrays deeper than {_MAX_ATTR_DEPTH}")
            return [self.attr(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(self.check(value, list, where))]
        raise self.fail(f"{where} has the unknown attribute type {tag!r}")


def _op_name(short: str, reader: _Reader, index: int) -> str:
    if short == "p":
        return "builtin.parameter"
    dialect, dot, rest = short.partition(".")
    if not dot or dialect not in _DIALECTS or not rest:
        raise reader.fail(f"op #{index} has the unknown name {short!r} (expected 'p', '0.x' or '1.x')")
    return f"{_DIALECTS[dialect]}.{rest}"


def parse_pir(data: bytes, source: str = "<bytes>") -> PirProgram:
    """Parse and validate a PIR JSON program (``inference.json`` bytes); ``source`` names it in errors.

    Checks the header and version, op names against :data:`KNOWN_OPS`, value ids (each defined once, used only
    after its definition), types, dims and attribute spellings. Raises FormatError for anything else.
    """
    reader = _Reader(source)
    if len(data) > _MAX_BYTES:
        raise reader.fail(f"the program is {len(data)} bytes, more than the {_MAX_BYTES} liteseg reads")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise reader.fail(f"not UTF-8 text ({e.reason} at byte {e.start})") from None

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON here")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except RecursionError:
        raise reader.fail("the JSON nests too deeply") from None
    except ValueError as e:
        raise reader.fail(f"not valid JSON ({e})") from None
    base = reader.get(doc, "base_code", dict, "the file")
    if reader.get(base, "magic", str, "base_code") != "pir":
        raise reader.fail(f"base_code.magic is {base['magic']!r}, not 'pir'")
    version = reader.get(base, "version", int, "base_code")
    if version not in SUPPORTED_VERSIONS:
        known = ", ".join(f"{v} ({p})" for v, p in SUPPORTED_VERSIONS.items())
        raise FormatError(f"{source}: PIR version {version} is not supported (liteseg reads versions {known}); "
                          f"re-export with one of those Paddle releases or load the .pdparams checkpoint")
    reader.version = version
    regions = reader.get(reader.get(doc, "program", dict, "the file"), "regions", list, "program")
    if len(regions) != 1:
        raise reader.fail(f"the program has {len(regions)} regions, expected 1")
    blocks = reader.get(regions[0], "blocks", list, "region 0")
    if len(blocks) != 1:
        raise reader.fail(f"region 0 has {len(blocks)} blocks, expected 1 (no control flow)")
    if reader.get(blocks[0], "args", list, "block 0"):
        raise reader.fail("block 0 has block arguments")
    raw_ops = reader.get(blocks[0], "ops", list, "block 0")
    if len(raw_ops) > _MAX_OPS:
        raise reader.fail(f"the block has {len(raw_ops)} ops, more than {_MAX_OPS}")

    ops: list[PirOp] = []
    parameters: OrderedDict[int, tuple[str, str, list[int]]] = OrderedDict()
    defined: set[int] = set()
    names: set[str] = set()

    def define(vid: Any, tt: Any, where: str) -> PirValue:
        reader.check(vid, int, f"{where}.%")
        if vid <= 0 or vid in defined:
            raise reader.fail(f"{where} defines value %{vid} {'again' if vid in defined else '(ids start at 1)'}")
        defined.add(vid)
        return PirValue(vid, *reader.tensor_type(tt, f"{where}.TT"))

    for index, raw in enumerate(raw_ops):
        where = f"op #{index}"
        name = _op_name(reader.get(raw, "#", str, where), reader, index)
        where = f"op #{index} ({name})"
        if name not in KNOWN_OPS:
            raise FormatError(f"{source}: {where} is not an op liteseg knows (PIR version {version}); liteseg "
                              f"reads PP-LiteSeg programs made of {', '.join(sorted(KNOWN_OPS))}")
        if name == "builtin.parameter":
            attrs = reader.get(raw, "A", list, where)
            if len(attrs) != 4:
                raise reader.fail(f"{where}.A has {len(attrs)} entries, expected 4 "
                                  f"(is_distributed, is_parameter, need_clip, name)")
            for i in range(3):
                reader.check(attrs[i], (int, bool), f"{where}.A[{i}]")
            pname = reader.check(attrs[3], str, f"{where}.A[3]")
            if not pname or pname in names:
                raise reader.fail(f"{where} has {'an empty' if not pname else 'the duplicate'} name {pname!r}")
            names.add(pname)
            out = reader.get(raw, "O", dict, where)
            value = define(out.get("%"), out.get("TT"), f"{where}.O")
            if value.dtype == "vector" or any(d <= 0 for d in value.dims):
                raise reader.fail(f"{where} ({pname!r}) has the non-static type {value.dtype}{list(value.dims)}")
            parameters[value.id] = (pname, value.dtype, list(value.dims))
            ops.append(PirOp(name, index, [], [value], {"name": pname}))
            continue
        operands = []
        for i, operand in enumerate(reader.get(raw, "I", list, where)):
            vid = reader.get(operand, "%", int, f"{where}.I[{i}]")
            if vid != 0 and vid not in defined:
                raise reader.fail(f"{where} operand {i} uses value %{vid}, which no earlier op defines "
                                  f"(dangling value id)")
            operands.append(vid)
        results = [define(reader.get(r, "%", int, f"{where}.O[{i}]"), reader.get(r, "TT", dict, f"{where}.O[{i}]"),
                          f"{where}.O[{i}]") for i, r in enumerate(reader.get(raw, "O", list, where))]
        attrs = {}
        for i, a in enumerate(reader.get(raw, "A", list, where)):
            attrs[reader.get(a, "N", str, f"{where}.A[{i}]")] = reader.attr(a.get("AT"), f"{where}.A[{i}].AT")
        ops.append(PirOp(name, index, operands, results, attrs))
    return PirProgram(version, ops, parameters)
