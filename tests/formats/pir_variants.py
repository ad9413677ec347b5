"""Assemble and derive Paddle 3 PIR packages from the ``pp_liteseg_t_pir`` fixture (test helpers, no Paddle).

* ``assemble``: a package folder from a fixture variant (``inference_fixed512`` / ``inference_argmax`` ship no
  ``.pdiparams``: it is byte-identical to ``inference/``'s).
* ``pack``: PaddleX-style ``.tar`` / ``.tgz`` with one top-level folder.
* ``renumbered``: every generated counter in the parameter names shifted (as when the exporting process built
  other models first), which changes the ``.pdiparams`` order.
* ``one_minus_alpha``: a PaddleSeg <= 2.6 model re-exported on Paddle 3: ``scale(alpha, -1, bias=1)`` instead of
  ``subtract(_scale, alpha)``, no ``_scale`` parameters.
"""
from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

from liteseg.formats.pdiparams import parse_tensor_stream, write_pdiparams
from liteseg.formats.pir import parse_pir


def ops_of(doc: dict) -> list:
    return doc["program"]["regions"][0]["blocks"][0]["ops"]


def assemble(pir_dir: Path, variant: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("inference.json", "inference.yml"):
        shutil.copy(pir_dir / variant / name, dst / name)
    shutil.copy(pir_dir / "inference" / "inference.pdiparams", dst / "inference.pdiparams")
    return dst


def pack(folder: Path, archive: Path, top: str) -> Path:
    mode = "w:gz" if archive.name.endswith((".tgz", ".tar.gz")) else "w"
    with tarfile.open(archive, mode) as tar:
        for p in sorted(folder.iterdir()):
            tar.add(p, arcname=f"{top}/{p.name}")
    return archive


def _params(folder: Path) -> dict:
    program = parse_pir((folder / "inference.json").read_bytes())
    return parse_tensor_stream((folder / "inference.pdiparams").read_bytes(), program.stored_tensors())


def write_variant(src: Path, dst: Path, doc: dict, params: dict) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "inference.json").write_text(json.dumps(doc))
    shutil.copy(src / "inference.yml", dst / "inference.yml")
    write_pdiparams(dst / "inference.pdiparams", params)
    return dst


def renumbered(src: Path, dst: Path, offset: int = 70) -> Path:
    params = _params(src)
    doc = json.loads((src / "inference.json").read_text())

    def rename(name: str) -> str:
        return re.sub(r"_(\d+)\.", lambda m: f"_{int(m.group(1)) + offset}.", name, count=1)

    for op in ops_of(doc):
        if op["#"] == "p":
            op["A"][3] = rename(op["A"][3])
    return write_variant(src, dst, doc, {rename(k): v for k, v in params.items()})


def one_minus_alpha(src: Path, dst: Path) -> Path:
    params = _params(src)
    doc = json.loads((src / "inference.json").read_text())
    ops = ops_of(doc)
    names = {op["O"]["%"]: op["A"][3] for op in ops if op["#"] == "p"}
    scales = {op["I"][0]["%"] for op in ops if op["#"] == "1.subtract" and op["I"][0]["%"] in names}
    next_id = 1 + max(r["%"] for op in ops for r in ([op["O"]] if op["#"] == "p" else op["O"]))
    out = []
    for op in ops:
        if op["#"] == "p" and op["O"]["%"] in scales:
            continue
        if op["#"] == "1.subtract" and op["I"][0]["%"] in scales:
            f32 = {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, [1], "NCHW", [], 0]}
            out.append({"#": "1.full", "A": [
                {"AT": {"#": "1.a_intarray", "D": [1]}, "N": "shape"},
                {"AT": {"#": "0.a_f64", "D": -1.0}, "N": "value"},
                {"AT": {"#": "1.a_dtype", "D": "float32"}, "N": "dtype"},
                {"AT": {"#": "1.a_place", "D": [1, 0, ""]}, "N": "place"}],
                "I": [], "O": [{"%": next_id, "TT": f32}], "OA": []})
            op = {"#": "1.scale", "A": [{"AT": {"#": "0.a_f32", "D": 1.0}, "N": "bias"},
                                        {"AT": {"#": "0.a_bool", "D": True}, "N": "bias_after_scale"}],
                  "I": [op["I"][1], {"%": next_id}], "O": op["O"], "OA": op["OA"]}
            next_id += 1
        out.append(op)
    ops[:] = out
    return write_variant(src, dst, doc, {k: v for k, v in params.items() if k not in {names[i] for i in scales}})


# The auxiliary heads' layers as Paddle names them in PaddleSeg's PPLiteSeg (created after the main head's
# conv2d_45/46 and batch_norm2d_45), with their keys in the .pdparams: head -> (conv, conv_out, batch norm).
AUX_LAYERS = {1: ("conv2d_47", "conv2d_48", "batch_norm2d_46"), 2: ("conv2d_49", "conv2d_50", "batch_norm2d_47")}
_BN_KEYS = {"w_0": "weight", "b_0": "bias", "w_1": "_mean", "w_2": "_variance"}


def aux_tensors(pdparams: dict) -> dict:
    """Paddle name -> tensor of the auxiliary heads' 12 parameters, taken from the checkpoint's ``seg_heads.1/2``."""
    out = {}
    for head, (conv, conv_out, bn) in AUX_LAYERS.items():
        prefix = f"seg_heads.{head}"
        out[f"{conv}.w_0"] = pdparams[f"{prefix}.conv._conv.weight"]
        out[f"{conv_out}.w_0"] = pdparams[f"{prefix}.conv_out.weight"]
        out.update({f"{bn}.{slot}": pdparams[f"{prefix}.conv._batch_norm.{key}"] for slot, key in _BN_KEYS.items()})
    return out


def paddle30(src: Path, dst: Path, extra: dict) -> Path:
    """``src`` (a Paddle 3.3 package) as Paddle 3.0 writes it: PIR version 1, pool2d strides/paddings as int32
    arrays (what patch/2.yaml upgrades), and a dangling ``builtin.parameter`` op per tensor of ``extra`` (layers off
    the inference path), whose tensors join the ``.pdiparams`` in sorted name order."""
    params = _params(src)
    doc = json.loads((src / "inference.json").read_text())
    doc["base_code"]["version"] = 1
    ops = ops_of(doc)
    for op in ops:
        if op["#"] == "1.pool2d":
            for attr in op["A"]:
                if attr["N"] in ("strides", "paddings"):
                    attr["AT"]["D"] = [{"#": "0.a_i32", "D": v["D"]} for v in attr["AT"]["D"]]
    next_id = 1 + max(r["%"] for op in ops for r in ([op["O"]] if op["#"] == "p" else op["O"]))
    dangling = []
    for i, (name, value) in enumerate(sorted(extra.items(), key=lambda kv: kv[0].encode(), reverse=True)):
        tt = {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, list(value.shape), "NCHW", [], 0]}
        dangling.append({"#": "p", "A": [0, 1, 1, name], "DA": [], "O": {"%": next_id + i, "TT": tt},
                         "OA": [1, 0, 1], "QA": []})
    ops[:0] = dangling
    return write_variant(src, dst, doc, {**params, **extra})
