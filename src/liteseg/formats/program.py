"""Reading a Paddle inference program (``.pdmodel``): I/O signature, parameter usage, architecture recovery."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from ..errors import ArchitectureError, FormatError
from .paddle_proto import VAR_TYPES, OpDesc, ProgramDesc

_CONV_OPS = ("conv2d", "depthwise_conv2d")
_PASS_THROUGH = ("reshape2", "reshape", "unsqueeze2", "unsqueeze")


def read_program(path: str | os.PathLike) -> ProgramDesc:
    """Parse a ``.pdmodel`` file (ProgramDesc protobuf)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file")
    with open(path, "rb") as f:
        return parse_program(f.read(), path)


def parse_program(data: bytes, path: str = "<bytes>") -> ProgramDesc:
    """Parse ProgramDesc bytes; ``path`` only names the source in errors."""
    if data.lstrip().startswith(b"{"):
        raise FormatError(f"{path}: this is a Paddle 3 PIR program (JSON), not a ProgramDesc; read it with "
                          f"liteseg.formats.pir.parse_pir (liteseg.load does so by itself)")
    program = ProgramDesc()
    try:
        program.ParseFromString(data)
    except DecodeError as e:
        raise FormatError(f"{path}: not a Paddle program ({e}); the file is truncated or corrupt") from None
    if not program.blocks or not program.blocks[0].ops:
        raise FormatError(f"{path}: the program has no operators; not a Paddle inference model")
    block = program.blocks[0]
    names = [v.name for v in block.vars] + [op.type for op in block.ops] + [
        a for op in block.ops for slot in list(op.inputs) + list(op.outputs) for a in [slot.parameter, *slot.arguments]]
    if not all(isinstance(n, str) for n in names):  # protobuf hands back bytes for strings that are not UTF-8
        raise FormatError(f"{path}: the program holds names that are not UTF-8 text; the file is corrupt")
    return program


def _args(op: OpDesc, slot: str, outputs: bool = False) -> list[str]:
    for var in op.outputs if outputs else op.inputs:
        if var.parameter == slot:
            return list(var.arguments)
    return []


def _arg(op: OpDesc, slot: str, source: str, outputs: bool = False) -> str:
    """The first argument of ``slot``; a FormatError naming the op when the program lacks it."""
    args = _args(op, slot, outputs)
    if not args:
        raise FormatError(f"{source}: a {op.type} op has no {slot!r} {'output' if outputs else 'input'}; the "
                          f"program is corrupt or not a Paddle inference model")
    return args[0]


def _attr(op: OpDesc, name: str) -> Any:
    for a in op.attrs:
        if a.name == name:
            for fld in ("ints", "floats", "strings", "longs"):
                if len(getattr(a, fld)):
                    return list(getattr(a, fld))
            for fld in ("s", "f", "i", "b", "l"):
                if a.HasField(fld):
                    return getattr(a, fld)
            return None
    return None


@dataclass
class ParamUse:
    """One weight-bearing use in execution order: ``kind`` in conv, bias, bn, scale; ``names`` Paddle names.

    ``attrs`` (filled from PIR programs) are checked against the recovered model's layers when mapping."""

    kind: str
    names: list[str]
    depthwise: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)  # conv: stride/padding/dilation/groups; bn: eps


@dataclass
class ProgramInfo:
    """What liteseg needs from an inference program."""

    feed_name: str
    feed_shape: list[int]
    fetch_name: str
    output_op: str
    output_dtype: str
    version: int
    shapes: dict[str, list[int]]
    uses: list[ParamUse] = field(default_factory=list)
    one_minus_alpha: int = 0  # UAFMs computing 1 - alpha with a scale op (PaddleSeg <= 2.6 exports)
    adaptive_bins: list[int] = field(default_factory=list)
    program_format: str = "ProgramDesc"  # or "PIR" (Paddle 3 inference.json); ``version`` is then the PIR version
    unused_params: list[str] = field(default_factory=list)  # PIR: parameter ops no op consumes (Paddle 3.0 keeps them)


def analyze_program(program: ProgramDesc, source: str = "") -> ProgramInfo:
    """Feed/fetch signature, output op and the parameters in the order the program uses them."""
    block = program.blocks[0]
    vars_ = {v.name: v for v in block.vars}
    persistable = {n for n, v in vars_.items() if v.persistable}
    shapes = {n: list(v.type.lod_tensor.tensor.dims) for n, v in vars_.items()}
    producer: dict[str, OpDesc] = {}
    feed_name = fetch_name = ""
    uses: list[ParamUse] = []
    one_minus = 0
    bins: list[int] = []
    for op in block.ops:
        t = op.type
        if t == "feed":
            feed_name = _arg(op, "Out", source, outputs=True)
        elif t == "fetch":
            fetch_name = _arg(op, "X", source)
        elif t in _CONV_OPS:
            uses.append(ParamUse("conv", _args(op, "Filter"), depthwise=t == "depthwise_conv2d"))
        elif t == "batch_norm":
            uses.append(ParamUse("bn", [_arg(op, s, source) for s in ("Scale", "Bias", "Mean", "Variance")]))
        elif t == "elementwise_add":
            y = _arg(op, "Y", source)
            src = producer.get(y)
            seen = set()
            while y not in persistable and src is not None and src.type in _PASS_THROUGH and id(src) not in seen:
                seen.add(id(src))
                y = _arg(src, "X", source)
                src = producer.get(y)
            if y in persistable:
                uses.append(ParamUse("bias", [y]))
        elif t == "elementwise_sub" and _arg(op, "X", source) in persistable:
            uses.append(ParamUse("scale", [_arg(op, "X", source)]))
        elif t == "scale":
            src = producer.get(_arg(op, "X", source))
            if src is not None and src.type == "sigmoid" and _attr(op, "scale") == -1.0 and _attr(op, "bias") == 1.0:
                one_minus += 1
        elif t == "pool2d" and _attr(op, "adaptive"):
            ksize = _attr(op, "ksize")
            if not isinstance(ksize, list) or not ksize:
                raise FormatError(f"{source}: an adaptive pool2d op has no ksize; the program is corrupt")
            bins.append(int(ksize[0]))
        for out in op.outputs:
            for name in out.arguments:
                producer[name] = op
    if not feed_name or not fetch_name:
        raise FormatError(f"{source}: the program has no feed/fetch ops; not an exported inference model")
    if fetch_name not in vars_:
        raise FormatError(f"{source}: the fetched variable {fetch_name!r} is not declared; the program is corrupt")
    output_op, output_dtype = "none", VAR_TYPES.get(vars_[fetch_name].type.lod_tensor.tensor.data_type, "float32")
    node = producer.get(fetch_name)
    seen = set()
    while node is not None and node.type in ("scale", "cast") and id(node) not in seen:
        seen.add(id(node))
        node = producer.get(_arg(node, "X", source))
    if node is not None and node.type in ("arg_max", "argmax"):
        output_op = "argmax"
    elif node is not None and node.type == "softmax":
        output_op = "softmax"
    return ProgramInfo(feed_name=feed_name, feed_shape=shapes.get(feed_name, []), fetch_name=fetch_name,
                       output_op=output_op, output_dtype=output_dtype, version=program.version.version,
                       shapes=shapes, uses=uses, one_minus_alpha=one_minus, adaptive_bins=bins)


def recover_architecture(info: ProgramInfo, source: str = "") -> tuple[str, dict[str, Any]]:
    """(registry name, constructor kwargs) from the program alone (no ``.pdiparams.info``, no config)."""
    convs: list[tuple[list[int], bool, bool]] = []  # (filter shape, depthwise, followed by a bias)
    for use in info.uses:
        if use.kind == "conv":
            shape = info.shapes.get(use.names[0]) if use.names else None
            if shape is None or len(shape) != 4 or min(shape) <= 0:
                raise ArchitectureError(f"{source}: a convolution filter {use.names[:1]} has shape {shape}, not "
                                        f"[out, in, kh, kw]; the program is corrupt or not a PP-LiteSeg model")
            convs.append((shape, use.depthwise, False))
        elif use.kind == "bias" and convs:
            convs[-1] = (convs[-1][0], convs[-1][1], True)
    first_biased = next((i for i, c in enumerate(convs) if c[2]), None)
    if first_biased is None or first_biased < 3:
        raise ArchitectureError(f"{source}: no SPPM (biased convolutions) found; not a PP-LiteSeg program")
    backbone, rest = convs[:first_biased], convs[first_biased:]
    layers: list[int] = []
    blocks = [i for i in range(2, len(backbone)) if backbone[i][0][2] == 1 and not backbone[i][1]]
    for b in blocks:
        stride2 = b + 1 < len(backbone) and backbone[b + 1][1]
        if stride2 or not layers:
            layers.append(0)
        layers[-1] += 1
    arch = {(2, 2, 2): "pp_liteseg_t", (4, 5, 3): "pp_liteseg_b"}.get(tuple(layers))
    if arch is None:
        raise ArchitectureError(f"{source}: unknown architecture: STDC stage depths {layers} are neither STDC1 "
                                f"(2, 2, 2) nor STDC2 (4, 5, 3)")
    n_sppm = sum(1 for c in rest if c[2])
    sppm, rest = rest[:n_sppm], rest[n_sppm:]
    head, arms = rest[-2:], rest[:-2]
    n_arms = 3
    if len(arms) not in (2 * n_arms, 4 * n_arms) or len(head) != 2:
        raise ArchitectureError(f"{source}: unexpected decoder layout ({len(arms)} UAFM convolutions); not a "
                                f"PP-LiteSeg program with three UAFMs")
    per_arm = len(arms) // n_arms
    groups = [arms[i * per_arm:(i + 1) * per_arm] for i in range(n_arms)]  # arm 2, 1, 0
    arm_type = "UAFM"
    if per_arm == 4:
        atten = groups[0][1][0]  # conv_xy_atten.0 filter [out, in, kh, kw]
        y_ch = groups[0][0][0][0]
        if atten[2] == 3:
            arm_type = {4: "UAFM_SpAtten", 2: "UAFM_SpAtten_S"}.get(atten[1], "")
        else:
            arm_type = {4 * y_ch: "UAFM_ChAtten", 2 * y_ch: "UAFM_ChAtten_S"}.get(atten[1], "")
        if not arm_type:
            raise ArchitectureError(f"{source}: cannot tell the UAFM type from an attention filter {atten}")
    kwargs: dict[str, Any] = {
        "num_classes": head[1][0][0],
        "arm_type": arm_type,
        "arm_out_chs": [g[-1][0][0] for g in reversed(groups)],
        "cm_out_ch": sppm[-1][0][0],
        "seg_head_inter_chs": [head[0][0][0], 64, 64],
    }
    bins = info.adaptive_bins or [1, 2, 4]
    if len(bins) != n_sppm - 1:
        raise ArchitectureError(f"{source}: {len(bins)} adaptive pools for {n_sppm - 1} SPPM branches")
    if bins != [1, 2, 4]:
        kwargs["cm_bin_sizes"] = bins
    if backbone[1][0][0] != 64:
        kwargs["backbone_kwargs"] = {"base": backbone[1][0][0]}
    return arch, kwargs
