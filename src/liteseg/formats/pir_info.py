"""What liteseg needs from a PIR program (:class:`~liteseg.formats.program.ProgramInfo`), by reading how its ops
consume the parameters: conv filters, batch-norm operands, conv biases (``reshape`` to ``[1, -1, 1, 1]`` then
``add``), UAFM ``_scale`` (``subtract`` from a parameter) or PaddleSeg <= 2.6's ``1 - alpha`` (``scale``), SPPM bins
(adaptive ``pool2d`` kernels from ``full_int_array``), the feed and the output op. Constants that Paddle 2 kept in
attributes are operands here; the ones that decide the model are checked, and any form not recognised is refused.
"""
from __future__ import annotations

from typing import Any

from ..errors import FormatError
from .pir import PirOp, PirProgram
from .program import ParamUse, ProgramInfo

_BIAS_SHAPE = [1, -1, 1, 1]
_SLICE_END = 2**31 - 1  # "to the end", as Paddle writes x.shape[2:]


class _Walk:
    def __init__(self, program: PirProgram, source: str) -> None:
        self.program = program
        self.source = source
        self.producer: dict[int, PirOp] = {}
        self.consumed: set[tuple[int, int]] = set()  # (op index, operand position) that take a parameter

    def fail(self, op: PirOp, what: str) -> FormatError:
        return FormatError(f"{self.source}: {op.where()} {what} (PIR version {self.program.version}); liteseg "
                           f"cannot prove it reads this program correctly, so it refuses it")

    def operand(self, op: PirOp, pos: int, required: bool = True) -> int:
        if pos >= len(op.operands) or (required and op.operands[pos] == 0):
            raise self.fail(op, f"lacks operand {pos}")
        return op.operands[pos]

    def param(self, op: PirOp, pos: int) -> str | None:
        """The parameter name at operand ``pos`` (marking it consumed), or None when it is not a parameter."""
        vid = self.operand(op, pos)
        entry = self.program.parameters.get(vid)
        if entry is None:
            return None
        self.consumed.add((op.index, pos))
        return entry[0]

    def need_param(self, op: PirOp, pos: int, what: str) -> str:
        name = self.param(op, pos)
        if name is None:
            raise self.fail(op, f"takes its {what} (operand {pos}) from a computed value, not a parameter")
        return name

    def attr(self, op: PirOp, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in op.attrs:
            raise self.fail(op, f"has no attribute {name!r}")
        value = op.attrs[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(op, f"has attribute {name}={value!r} of the wrong type")
        return value

    def ints(self, op: PirOp, name: str, n: int | None = None) -> list[int]:
        value = self.attr(op, name, list)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value) or (n is not None and len(value) != n):
            raise self.fail(op, f"has attribute {name}={value!r}, expected {n or 'some'} integers")
        return value

    def expect(self, op: PirOp, name: str, wanted: Any) -> None:
        value = self.attr(op, name, type(wanted))
        if value != wanted:
            raise self.fail(op, f"has {name}={value!r}; liteseg only reads {name}={wanted!r}")

    def constant(self, vid: int) -> Any:
        """The value of a ``full_int_array`` (list of ints) or a one-element ``full`` (float), else None."""
        src = self.producer.get(vid)
        if src is None:
            return None
        if src.name == "pd_op.full_int_array":
            return self.ints(src, "value")
        if src.name == "pd_op.full":
            shape = self.attr(src, "shape", list)
            if shape != [1]:
                raise self.fail(src, f"has shape {shape}; only one-element constants are read")
            return self.attr(src, "value", (int, float))
        return None

    def int_constant(self, op: PirOp, pos: int, what: str) -> list[int]:
        value = self.constant(self.operand(op, pos))
        if not isinstance(value, list):
            raise self.fail(op, f"takes its {what} (operand {pos}) from a value that is not a full_int_array")
        return value

    def scalar_constant(self, op: PirOp, pos: int, what: str) -> float:
        value = self.constant(self.operand(op, pos))
        if isinstance(value, list) or value is None:
            raise self.fail(op, f"takes its {what} (operand {pos}) from a value that is not a one-element full")
        return float(value)


def _conv(w: _Walk, op: PirOp) -> ParamUse:
    if len(op.operands) != 2:
        raise w.fail(op, f"has {len(op.operands)} operands, expected 2 (input, filter)")
    name = w.need_param(op, 1, "filter")
    dims = w.program.parameters[op.operands[1]][2]
    if len(dims) != 4:
        raise w.fail(op, f"has the filter {name!r} of shape {dims}, not 4-D")
    kh, kw = dims[2:]
    w.expect(op, "data_format", "NCHW")
    strides, dilations = w.ints(op, "strides", 2), w.ints(op, "dilations", 2)
    groups = w.attr(op, "groups", int)
    algorithm = w.attr(op, "padding_algorithm", str)
    pads = w.ints(op, "paddings")
    if algorithm == "SAME" and strides == [1, 1] and dilations == [1, 1] and kh % 2 and kw % 2:
        padding = [kh // 2, kw // 2]  # symmetric only at stride 1
    elif algorithm == "EXPLICIT" and len(pads) == 2:
        padding = pads
    elif algorithm == "EXPLICIT" and len(pads) == 4 and pads[0] == pads[1] and pads[2] == pads[3]:
        padding = [pads[0], pads[2]]
    else:
        raise w.fail(op, f"pads with {algorithm} {pads} at stride {strides}, which liteseg does not reproduce")
    return ParamUse("conv", [name], depthwise=op.name == "pd_op.depthwise_conv2d",
                    attrs={"stride": tuple(strides), "padding": tuple(padding), "dilation": tuple(dilations),
                           "groups": groups})


def _batch_norm(w: _Walk, op: PirOp) -> ParamUse:
    if len(op.operands) != 5:
        raise w.fail(op, f"has {len(op.operands)} operands, expected 5 (x, mean, variance, scale, bias)")
    mean, var, scale, bias = (w.need_param(op, i, what) for i, what in
                              ((1, "mean"), (2, "variance"), (3, "scale"), (4, "bias")))
    w.expect(op, "data_format", "NCHW")
    w.expect(op, "is_test", True)
    return ParamUse("bn", [scale, bias, mean, var], attrs={"eps": w.attr(op, "epsilon", float)})


def _bias(w: _Walk, op: PirOp) -> ParamUse | None:
    """``add(conv_out, reshape(bias, [1, -1, 1, 1]))``: a conv bias; any other ``add`` holds no parameter."""
    src = w.producer.get(w.operand(op, 1))
    if src is None or src.name != "pd_op.reshape":
        return None
    name = w.param(src, 0)
    if name is None:
        return None
    shape = w.int_constant(src, 1, "shape")
    if shape != _BIAS_SHAPE:
        raise w.fail(src, f"reshapes the parameter {name!r} to {shape}, not {_BIAS_SHAPE} (a conv bias)")
    return ParamUse("bias", [name])


def _check_resize_size(w: _Walk, op: PirOp) -> None:
    """The output size must be ``cast(slice(shape64(t), [2], [end]))``: the H, W of another tensor."""
    vid = w.operand(op, 1)
    if any(v != 0 for v in op.operands[2:]) or w.attr(op, "scale", list):
        raise w.fail(op, "resizes by a size tensor list or a scale factor, not to another tensor's size")
    src = w.producer.get(vid)
    if src is not None and src.name == "pd_op.cast":
        src = w.producer.get(w.operand(src, 0))
    if src is None or src.name != "pd_op.slice":
        raise w.fail(op, "takes its output size from something other than a slice of a tensor's shape")
    if (w.ints(src, "axes") != [0] or w.int_constant(src, 1, "start") != [2]
            or w.int_constant(src, 2, "end") not in ([_SLICE_END], [4]) or w.ints(src, "decrease_axis") != []):
        raise w.fail(src, "is not the [2:] slice of a shape")
    shape = w.producer.get(w.operand(src, 0))
    if shape is None or shape.name != "pd_op.shape64":
        raise w.fail(src, "slices something other than a shape64")


def _pool(w: _Walk, op: PirOp, bins: list[int]) -> None:
    kernel = w.int_constant(op, 1, "kernel size")
    for key, wanted in (("pooling_type", "avg"), ("global_pooling", False), ("data_format", "NCHW")):
        w.expect(op, key, wanted)
    if w.attr(op, "adaptive", bool):
        if len(kernel) != 2 or kernel[0] != kernel[1] or kernel[0] <= 0:
            raise w.fail(op, f"pools adaptively to {kernel}; the SPPM uses square bins")
        bins.append(kernel[0])
        return
    # The only fixed pool in PP-LiteSeg: STDC's AvgPool2D(3, 2, 1), exclusive of the padding.
    if (kernel != [3, 3] or w.ints(op, "strides") != [2, 2] or w.ints(op, "paddings") != [1, 1]
            or not w.attr(op, "exclusive", bool) or w.attr(op, "ceil_mode", bool)
            or w.attr(op, "padding_algorithm", str) != "EXPLICIT"):
        raise w.fail(op, "is an average pool other than STDC's 3x3 / stride 2 / padding 1")


def _is_one_minus(w: _Walk, op: PirOp) -> bool:
    """``scale(sigmoid(...), -1, bias=1)``: PaddleSeg <= 2.6's ``1 - alpha``."""
    src = w.producer.get(w.operand(op, 0))
    factor = w.scalar_constant(op, 1, "scale factor")
    bias, after = w.attr(op, "bias", float), w.attr(op, "bias_after_scale", bool)
    if factor == -1.0 and bias == 1.0 and after and src is not None and src.name == "pd_op.sigmoid":
        return True
    if factor == 1.0 and bias == 0.0:
        return False  # an identity scale
    raise w.fail(op, f"computes {factor} * x + {bias}; only 1 - alpha after a sigmoid and the identity are known")


def analyze_pir(program: PirProgram, source: str = "") -> ProgramInfo:
    """Feed/fetch signature, output op, and the parameter uses in program order (as for a ProgramDesc)."""
    w = _Walk(program, source)
    uses: list[ParamUse] = []
    bins: list[int] = []
    one_minus = 0
    feeds: list[PirOp] = []
    fetches: list[PirOp] = []
    for op in program.ops:
        t = op.name
        if t == "pd_op.data":
            feeds.append(op)
        elif t == "pd_op.fetch":
            fetches.append(op)
        elif t in ("pd_op.conv2d", "pd_op.depthwise_conv2d"):
            uses.append(_conv(w, op))
        elif t == "pd_op.batch_norm_":
            uses.append(_batch_norm(w, op))
        elif t == "pd_op.add":
            use = _bias(w, op)
            if use is not None:
                uses.append(use)
        elif t == "pd_op.subtract":
            name = w.param(op, 0)
            if name is not None:
                if program.parameters[op.operands[0]][2] != [1]:
                    raise w.fail(op, f"subtracts from the parameter {name!r}, which is not a scalar UAFM _scale")
                uses.append(ParamUse("scale", [name]))
        elif t == "pd_op.scale":
            one_minus += _is_one_minus(w, op)
        elif t == "pd_op.pool2d":
            _pool(w, op, bins)
        elif t == "pd_op.bilinear_interp":
            for key, wanted in (("interp_method", "bilinear"), ("align_corners", False), ("align_mode", 0),
                                ("data_format", "NCHW")):
                w.expect(op, key, wanted)
            _check_resize_size(w, op)
        for r in op.results:
            w.producer[r.id] = op
    for op in program.ops:
        for pos, vid in enumerate(op.operands):
            if vid in program.parameters and (op.index, pos) not in w.consumed:
                raise w.fail(op, f"uses the parameter {program.parameters[vid][0]!r} as operand {pos}, a use "
                                 f"liteseg does not map")
    used = {vid for op in program.ops for vid in op.operands}
    # Paddle 3.0 keeps the parameter ops (and tensors) of layers off the inference path, e.g. the auxiliary heads.
    unused = [name for vid, (name, _, _) in program.parameters.items() if vid not in used]
    if len(feeds) != 1 or len(fetches) != 1:
        raise FormatError(f"{source}: the program has {len(feeds)} data and {len(fetches)} fetch ops, expected one "
                          f"each; not an exported inference model")
    feed, fetch = feeds[0], fetches[0]
    feed_name = w.attr(feed, "name", str)
    feed_shape = list(feed.results[0].dims) if feed.results else []
    if len(feed_shape) != 4 or feed_shape[1] != 3:
        raise w.fail(feed, f"feeds {feed_shape}; PP-LiteSeg takes [N, 3, H, W]")
    out_id = w.operand(fetch, 0)
    output_dtype = fetch.results[0].dtype if fetch.results else "float32"
    output_op = "none"
    node = w.producer.get(out_id)
    while node is not None and node.name in ("pd_op.cast", "pd_op.scale"):
        node = w.producer.get(w.operand(node, 0))
    if node is not None and node.name == "pd_op.argmax":
        if w.scalar_constant(node, 1, "axis") != 1.0 or w.attr(node, "keepdims", bool):
            raise w.fail(node, "is not an argmax over the class axis 1")
        output_op = "argmax"
    elif node is not None and node.name == "pd_op.softmax":
        if w.attr(node, "axis", int) not in (1, -3):
            raise w.fail(node, "is not a softmax over the class axis 1")
        output_op = "softmax"
    shapes = {name: dims for name, _, dims in program.parameters.values()}
    return ProgramInfo(feed_name=feed_name, feed_shape=feed_shape, fetch_name=w.attr(fetch, "name", str),
                       output_op=output_op, output_dtype=output_dtype, version=program.version, shapes=shapes,
                       uses=uses, one_minus_alpha=one_minus, adaptive_bins=bins, program_format="PIR",
                       unused_params=unused)
