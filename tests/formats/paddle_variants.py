"""Derive the other published Paddle layouts from the 2.8 fixture (test helpers, no Paddle needed).

* PaddleSeg <= 2.6 checkpoints: ``backbone.x2 ... x32`` alias keys duplicating ``backbone.features.*``, an unused
  ``backbone.conv_last``, no UAFM ``_scale``.
* PaddleSeg <= 2.6 inference models: UAFMs compute ``scale(alpha, -1, 1)`` instead of ``_scale - alpha``, no
  ``_scale`` tensors, ``.pdiparams.info`` with alias names.
* Fixed-shape re-saves (paddle_infer_shape.py): feed dims fixed, a second ``scale`` op, no ``.info``.
"""
from __future__ import annotations

import pickle
import re
import tarfile
from pathlib import Path

import numpy as np

from liteseg.formats.inference_model import write_inference_model
from liteseg.formats.paddle_proto import ATTR_BOOLEAN, ATTR_FLOAT, ProgramDesc
from liteseg.formats.pdiparams import read_pdiparams
from liteseg.formats.program import read_program
from liteseg.formats.safe_pickle import load_pickle

def alias_name(key: str, layers=(2, 2, 2)) -> str:
    """``backbone.features.<i>.rest`` -> PaddleSeg 2.5's ``backbone.x<s>.0.<j>.rest``."""
    m = re.match(r"backbone\.features\.(\d+)\.(.+)", key)
    if not m:
        return key
    i = int(m.group(1))
    bounds = [("2", 0, 1), ("4", 1, 2), ("8", 2, 2 + layers[0]), ("16", 2 + layers[0], 2 + sum(layers[:2])),
              ("32", 2 + sum(layers[:2]), 2 + sum(layers))]
    for stride, start, end in bounds:
        if start <= i < end:
            return f"backbone.x{stride}.0.{i - start}.{m.group(2)}"
    raise ValueError(key)


def legacy_pdparams(src: Path, dst: Path, prefix: str = "", protocol: int = 2) -> Path:
    data = load_pickle(src)
    out = {}
    for key, value in data.items():
        if "@@" in key or key.endswith("._scale"):
            continue
        out[prefix + key] = value
    for key, value in data.items():
        if key.startswith("backbone.features."):
            out[prefix + alias_name(key)] = value.copy()
    rng = np.random.RandomState(0)
    out[prefix + "backbone.conv_last.conv.weight"] = rng.randn(1024, 1024, 1, 1).astype("float32")
    for name in ("weight", "bias", "_mean", "_variance"):
        out[prefix + f"backbone.conv_last.bn.{name}"] = rng.rand(1024).astype("float32")
    with open(dst, "wb") as f:
        pickle.dump(out, f, protocol=protocol)
    return dst


def _attr(op, name, kind, value):
    a = op.attrs.add(name=name, type=kind)
    if kind == ATTR_FLOAT:
        a.f = value
    else:
        a.b = value


def legacy_inference(src: Path, dst: Path, with_info: bool = True) -> Path:
    """A PaddleSeg <= 2.6 style export: 1 - alpha via scale ops, no _scale, alias names in .info."""
    program = read_program(src / "model.pdmodel")
    params = read_pdiparams(src / "model.pdiparams", program)
    block = program.blocks[0]
    scale_vars = set()
    for op in block.ops:
        if op.type != "elementwise_sub":
            continue
        scale_vars.add(op.inputs[[v.parameter for v in op.inputs].index("X")].arguments[0])
        alpha = op.inputs[[v.parameter for v in op.inputs].index("Y")].arguments[0]
        del op.inputs[:]
        del op.attrs[:]
        op.type = "scale"
        op.inputs.add(parameter="X", arguments=[alpha])
        op.inputs.add(parameter="ScaleTensor")
        _attr(op, "scale", ATTR_FLOAT, -1.0)
        _attr(op, "bias", ATTR_FLOAT, 1.0)
        _attr(op, "bias_after_scale", ATTR_BOOLEAN, True)
    keep = [v for v in block.vars if v.name not in scale_vars]
    del block.vars[:]
    block.vars.extend(keep)
    params = {k: v for k, v in params.items() if k not in scale_vars}
    info = None
    if with_info:
        info = load_pickle(src / "model.pdiparams.info")
        info = {k: {**v, "structured_name": alias_name(v["structured_name"])} for k, v in info.items()
                if k not in scale_vars}
    deploy = {"model": "model.pdmodel", "params": "model.pdiparams", "transforms": [{"type": "Normalize"}]}
    return write_inference_model(dst, program, params, info, deploy)


def fixed_shape(src: Path, dst: Path, shape=(1, 3, 512, 512)) -> Path:
    """What paddle_infer_shape.py writes: fixed feed dims, an extra scale op before fetch, no .info."""
    program: ProgramDesc = read_program(src / "model.pdmodel")
    params = read_pdiparams(src / "model.pdiparams", program)
    block = program.blocks[0]
    for var in block.vars:
        if var.name == "x":
            del var.type.lod_tensor.tensor.dims[:]
            var.type.lod_tensor.tensor.dims.extend(shape)
    fetch = next(op for op in block.ops if op.type == "fetch")
    old = fetch.inputs[0].arguments[0]
    new = old[:-1] + "1"
    template = next(v for v in block.vars if v.name == old)
    var = block.vars.add()
    var.CopyFrom(template)
    var.name = new
    op = block.ops.add(type="scale")
    op.inputs.add(parameter="X", arguments=[old])
    op.outputs.add(parameter="Out", arguments=[new])
    _attr(op, "scale", ATTR_FLOAT, 1.0)
    _attr(op, "bias", ATTR_FLOAT, 0.0)
    ops = list(block.ops)
    fetch_index = next(i for i, o in enumerate(ops) if o.type == "fetch")
    reordered = ops[:fetch_index] + [ops[-1]] + ops[fetch_index:-1]
    del block.ops[:]
    block.ops.extend(reordered)
    fetch = next(o for o in block.ops if o.type == "fetch")
    fetch.inputs[0].arguments[0] = new
    deploy = {"model": "model.pdmodel", "params": "model.pdiparams", "transforms": [{"type": "Normalize"}],
              "input_shape": list(shape)}
    return write_inference_model(dst, program, params, None, deploy)


def make_tgz(folder: Path, archive: Path, top: str) -> Path:
    """Pack ``folder`` the way FastDeploy ships models: one top-level directory inside a .tgz."""
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted(folder.iterdir()):
            tar.add(p, arcname=f"{top}/{p.name}")
    return archive


def logits(model, x: np.ndarray) -> np.ndarray:
    """The model's eval logits for a float32 NCHW array."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def unit_scale_reference(fixture_dir: Path):
    """The fixture model with every UAFM ``_scale`` at 1: what PaddleSeg <= 2.5 computed (``1 - alpha``)."""
    import torch

    import liteseg

    model = liteseg.load(fixture_dir / "weights.pdparams").model
    with torch.no_grad():
        for arm in model.ppseg_head.arm_list:
            arm._scale.fill_(1.0)
    return model
