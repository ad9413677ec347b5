"""Seed inputs made from the reference fixtures (``../shared``, or ``$LITESEG_SHARED``).

Large fixtures are cut down to small but genuine files (a few real tensors, a three-op program) so that a
mutated input runs in milliseconds.
"""
from __future__ import annotations

import functools
import gzip
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    path = Path(os.environ.get("LITESEG_SHARED", REPO.parent / "shared"))
    if not (path / "fixtures" / "pp_liteseg_t").is_dir():
        raise SystemExit(f"fuzz: the seed corpus is made from the fixtures in {path}/fixtures, which are missing; "
                         f"set LITESEG_SHARED to the shared data folder")
    return path


def fixture(*parts: str) -> Path:
    return shared_dir().joinpath("fixtures", *parts)


@functools.lru_cache(maxsize=None)
def fixture_state() -> dict[str, np.ndarray]:
    """The fixture checkpoint's tensors by PaddleSeg name."""
    from liteseg.formats.pdparams import read_pdparams

    return dict(read_pdparams(fixture("pp_liteseg_t", "weights.pdparams")))


def pdparams_seeds() -> list[bytes]:
    state = fixture_state()
    small = {k: v for k, v in list(state.items()) if v.ndim == 1}
    subset = dict(list(small.items())[:4])
    # every key, with the shapes infer_config reads (first dim, attention filters) but almost no data
    skeleton = {}
    for k, v in state.items():
        keep = "conv_xy_atten" in k or v.ndim == 0
        skeleton[k] = v if keep else np.zeros((v.shape[0],) + (1,) * (v.ndim - 1), v.dtype)
    pairs = {k: (k, v) for k, v in subset.items()}
    pairs["StructuredToParameterName@@"] = {k: k for k in subset}
    return [pickle.dumps(subset, protocol=2), pickle.dumps(skeleton, protocol=2),
            pickle.dumps({"model." + k: v for k, v in subset.items()}, protocol=4), pickle.dumps(pairs, protocol=2)]


def pdmodel_seeds() -> list[bytes]:
    return [fixture("pp_liteseg_t", "inference", "model.pdmodel").read_bytes(), mini_program().SerializeToString()]


@functools.lru_cache(maxsize=None)
def mini_program():
    """feed -> the fixture's first conv2d + batch_norm -> fetch, with the fixture's own op and var records."""
    from liteseg.formats.paddle_proto import ProgramDesc
    from liteseg.formats.program import read_program

    full = read_program(fixture("pp_liteseg_t", "inference", "model.pdmodel"))
    block = full.blocks[0]
    ops = [block.ops[0]] + [next(o for o in block.ops if o.type == t) for t in ("conv2d", "batch_norm")]
    fetch = next(o for o in block.ops if o.type == "fetch")
    y = [a for v in ops[2].outputs if v.parameter == "Y" for a in v.arguments][0]
    prog = ProgramDesc()
    prog.version.CopyFrom(full.version)
    out = prog.blocks.add()
    out.idx, out.parent_idx = 0, -1
    names = {a for op in ops + [fetch] for v in list(op.inputs) + list(op.outputs) for a in v.arguments}
    names.add(y)
    for var in block.vars:
        if var.name in names:
            out.vars.add().CopyFrom(var)
    for op in ops:
        out.ops.add().CopyFrom(op)
    new_fetch = out.ops.add()
    new_fetch.CopyFrom(fetch)
    for v in new_fetch.inputs:
        if v.parameter == "X":
            del v.arguments[:]
            v.arguments.append(y)
    return prog


def mini_params() -> dict[str, np.ndarray]:
    """The fixture's own values for the mini program's stored tensors (read from the real .pdiparams)."""
    from liteseg.formats.pdiparams import persistable_vars, read_pdiparams
    from liteseg.formats.program import read_program

    folder = fixture("pp_liteseg_t", "inference")
    full = read_pdiparams(folder / "model.pdiparams", read_program(folder / "model.pdmodel"))
    return {name: full[name] for name in persistable_vars(mini_program())}


def pdiparams_bytes(params: dict[str, np.ndarray]) -> bytes:
    import tempfile

    from liteseg.formats.pdiparams import write_pdiparams

    with tempfile.TemporaryDirectory() as tmp:
        write_pdiparams(Path(tmp) / "p.pdiparams", params)
        return (Path(tmp) / "p.pdiparams").read_bytes()


def pdiparams_seeds() -> list[bytes]:
    params = mini_params()
    first = dict(list(params.items())[:1])
    return [pdiparams_bytes(params), pdiparams_bytes({k: v.astype(np.float16) for k, v in first.items()})]


def deploy_seeds() -> list[bytes]:
    return [fixture("pp_liteseg_t", "inference", "deploy.yaml").read_bytes(),
            fixture("pp_liteseg_t_pir", "inference", "inference.yml").read_bytes(),
            b"Deploy:\n  transforms:\n  - type: Normalize\n    mean: [0.485, 0.456, 0.406]\n"
            b"    std: [0.229, 0.224, 0.225]\n  output_op: argmax\n"]


@functools.lru_cache(maxsize=None)
def _package_files() -> tuple[tuple[str, bytes], ...]:
    params = mini_params()
    info = {name: {"structured_name": f"backbone.features.0.{i}"} for i, name in enumerate(params)}
    return (("model.pdmodel", mini_program().SerializeToString()), ("model.pdiparams", pdiparams_bytes(params)),
            ("model.pdiparams.info", pickle.dumps(info, protocol=2)),
            ("deploy.yaml", fixture("pp_liteseg_t", "inference", "deploy.yaml").read_bytes()))


def package_files() -> dict[str, bytes]:
    """The small model's package members, built once per process (the package mutator repacks them per input)."""
    return dict(_package_files())


def make_tar(files: dict[str, bytes], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def package_seeds() -> list[bytes]:
    files = package_files()
    nested = {f"PP_LiteSeg_T_infer/{k}": v for k, v in files.items()}
    return [make_tar(nested), make_tar(files, compress=False), make_tar(files)]


@functools.lru_cache(maxsize=None)
def gzip_bomb_member(size: int) -> bytes:
    """A ``.tgz`` whose one member holds ``size`` zero bytes (compresses about 1000:1)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        info = tarfile.TarInfo("bomb/model.pdiparams")
        info.size = size
        gz.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            gz.write(chunk)
        gz.write(bytes(size & ((1 << 20) - 1)))
        gz.write(bytes(-size % 512) + bytes(1024))
    return buf.getvalue()


def native_seeds() -> list[bytes]:
    import tempfile

    import torch
    from safetensors import safe_open

    from liteseg.formats.native import save_native

    asset = REPO / "src" / "liteseg" / "assets" / "pp_liteseg_t_camvid.safetensors"
    with safe_open(str(asset), framework="pt") as f:
        meta = json.loads(f.metadata()["liteseg"])
        names = list(f.keys())[:3]
        state = {k: f.get_tensor(k) for k in names}
    meta.pop("format_version", None)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (m, half) in enumerate([(meta, False), ({"arch": meta["arch"], "config": meta["config"]}, True)]):
            path = Path(tmp) / f"{i}.safetensors"
            save_native(path, {k: torch.as_tensor(v) for k, v in state.items()}, m, half=half)
            out.append(path.read_bytes())
    return out


def onnx_seeds() -> list[bytes]:
    """A one-node graph (N,3,H,W -> N,11,H,W) with the shipped model's liteseg metadata, and without it."""
    from onnx import TensorProto, helper

    from liteseg.export.metadata import ExportInfo, write_metadata
    from liteseg.meta import ModelMeta

    asset = REPO / "src" / "liteseg" / "assets" / "pp_liteseg_t_camvid.safetensors"
    from safetensors import safe_open

    with safe_open(str(asset), framework="pt") as f:
        meta = ModelMeta.from_dict(json.loads(f.metadata()["liteseg"])["meta"])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [11, 3, 1, 1], np.ones(33, np.float32).tolist())
    node = helper.make_node("Conv", ["x", "w"], ["logits"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 11, "H", "W"])],
                              [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    foreign = model.SerializeToString()
    write_metadata(model, meta, ExportInfo(opset=17))
    return [model.SerializeToString(), foreign]


def image_seeds() -> list[bytes]:
    """Small crops of a CamVid image and label in every format predict and serve accept."""
    from PIL import Image

    camvid = shared_dir() / "data" / "camvid"
    line = (camvid / "val.txt").read_text().split("\n")[0].split()
    rgb = Image.open(camvid / line[0]).convert("RGB").crop((0, 0, 48, 32))
    label = Image.open(camvid / line[1]).crop((0, 0, 48, 32))
    variants = [(rgb, "PNG"), (rgb, "JPEG"), (rgb, "BMP"), (rgb, "TIFF"), (rgb, "WEBP"), (rgb, "GIF"),
                (rgb.convert("RGBA"), "PNG"), (rgb.convert("L"), "PNG"), (rgb.convert("P"), "PNG"),
                (rgb.convert("CMYK"), "JPEG"), (rgb.convert("I;16"), "PNG"), (label, "PNG")]
    out = []
    for img, fmt in variants:
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out
