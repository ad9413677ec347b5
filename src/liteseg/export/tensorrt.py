"""One min/opt/max shape profile for TensorRT, stored in the ONNX metadata, and an engine builder.

PaddleSeg's deployment asks for shape ranges of every dynamic tensor; a liteseg graph has one input, so one
profile ``MIN:OPT:MAX`` (``N,3,H,W`` each, e.g. ``1x3x256x256:1x3x512x1024:1x3x1024x2048``) is enough. The
profile travels in the ``liteseg`` metadata (``ExportInfo.trt_profile``); :func:`build_engine` and the ONNX
Runtime TensorRT execution provider (:func:`ort_trt_provider_options`) read it from there.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import LitesegError
from ..utils.shapes import parse_shape
from .metadata import ExportInfo, load_onnx, read_metadata

TrtProfile = list[list[int]]  # [min, opt, max], each N,3,H,W


class TensorRTError(LitesegError):
    """A TensorRT profile is invalid or an engine could not be built."""


def parse_trt_profile(text: str, input_shape: Sequence[int] | None = None) -> TrtProfile:
    """``"1x3x256x256:1x3x512x1024:1x3x1024x2048"`` -> ``[min, opt, max]``, validated.

    Each dimension must grow from min to opt to max, and where ``input_shape`` (the export's, -1 = dynamic)
    fixes a dimension, all three shapes must have that size.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise TensorRTError(f"TensorRT profile {text!r}: expected MIN:OPT:MAX, three N x 3 x H x W shapes joined "
                            f"by ':', e.g. 1x3x256x256:1x3x512x1024:1x3x1024x2048")
    profile = [parse_shape(p, what=f"TensorRT profile {text!r}: the {what} shape", error=TensorRTError)
               for p, what in zip(parts, ("min", "opt", "max"))]
    names = ("N", "C", "H", "W")
    for i, name in enumerate(names):
        lo, opt, hi = (s[i] for s in profile)
        if not lo <= opt <= hi:
            raise TensorRTError(f"TensorRT profile {text!r}: {name} must satisfy min <= opt <= max, got "
                                f"{lo}, {opt}, {hi}")
        if input_shape is not None and input_shape[i] > 0 and {lo, opt, hi} != {input_shape[i]}:
            raise TensorRTError(f"TensorRT profile {text!r}: the export fixes {name} = {input_shape[i]}, so every "
                                f"profile shape needs {name} = {input_shape[i]} (or export with {name} dynamic)")
    return profile


def input_dims(profile_shape: Sequence[int], info: ExportInfo) -> list[int]:
    """An N,3,H,W profile shape in the layout of the graph's input (N,H,W,3 for ``--input-layout nhwc``)."""
    n, c, h, w = profile_shape
    return [n, h, w, c] if info.preprocess and info.input_layout == "nhwc" else [n, c, h, w]


def read_profile(onnx_path: str | os.PathLike) -> tuple[Any, ExportInfo, TrtProfile]:
    """(model proto, export info, profile) of a liteseg ONNX file that carries a TensorRT profile."""
    proto = load_onnx(onnx_path)
    stored = read_metadata(proto, str(onnx_path))
    if stored is None or not stored[1].trt_profile:
        raise TensorRTError(f"{onnx_path}: no TensorRT profile in this file; export it with "
                            f"--trt-profile MIN:OPT:MAX or pass a profile")
    return proto, stored[1], [list(s) for s in stored[1].trt_profile]


def ort_trt_provider_options(info: ExportInfo, input_name: str = "x") -> dict[str, str]:
    """The ONNX Runtime TensorRT EP's shape-range options from the stored profile."""
    keys = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
    return {k: f"{input_name}:" + "x".join(map(str, input_dims(s, info))) for k, s in zip(keys, info.trt_profile)}


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *, fp16: bool = False,
                 workspace_gb: float = 4.0, overwrite: bool = False) -> Path:
    """Build a serialized TensorRT engine from a liteseg ONNX file with its stored profile (needs ``tensorrt``)."""
    from ..utils.io import atomic_write_bytes

    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTError("building a TensorRT engine needs the tensorrt package and a CUDA GPU; "
                            "pip install tensorrt") from None
    engine_path = Path(engine_path)
    if engine_path.exists() and not overwrite:
        raise TensorRTError(f"{engine_path}: already exists; pass overwrite=True to replace it")
    proto, info, profile = read_profile(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(proto.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path}: TensorRT cannot parse this graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * 2 ** 30))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = builder.create_optimization_profile()
    shapes.set_shape(network.get_input(0).name, *(input_dims(s, info) for s in profile))
    config.add_optimization_profile(shapes)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise TensorRTError(f"{onnx_path}: TensorRT could not build an engine (see its log above)")
    atomic_write_bytes(engine_path, bytes(engine), overwrite=overwrite)
    return engine_path
