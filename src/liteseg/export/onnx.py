"""``export_onnx``: a PP-LiteSeg model -> ONNX, fixed or dynamic shapes, with its metadata and a verification run.

The TorchScript exporter (``dynamo=False``) is used on purpose: it writes one self-contained file (weights as
initializers), supports opset 11 and dynamic axes directly, and its Resize nodes take their sizes from runtime
shapes. The dynamo exporter needs onnxscript and writes external data files.
"""
from __future__ import annotations

import functools
import io
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import LitesegError
from ..loading import resolve_model
from ..meta import ModelMeta
from ..utils.io import atomic_write_bytes
from ..utils.shapes import parse_shape
from .metadata import ExportInfo, write_metadata
from .tensorrt import parse_trt_profile
from .verify import VerifyReport, example_input, verify_session
from .wrappers import ExportWrapper, choose_pool_modes, export_copy

MIN_OPSET = 11
# Sizes the verification runs a dynamic export on: square, CamVid, odd sizes with batch 2, and a tiny input
# whose 1/32 map is 1x1 (checks the half-pixel Resize convention).
DEFAULT_VERIFY_SHAPES = ((1, 3, 512, 512), (1, 3, 360, 480), (2, 3, 250, 333), (1, 3, 17, 23))
_TRACE_HW = (96, 128)


class ExportError(LitesegError):
    """An export could not be made or failed its verification."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it checked it."""

    path: Path | None
    info: ExportInfo
    meta: ModelMeta
    input_shape: list[int]
    bytes: int = 0
    seconds: float = 0.0
    verification: VerifyReport | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        dims = list(self.input_shape)
        if self.info.preprocess and self.info.input_layout == "nhwc":
            dims = [dims[0], dims[2], dims[3], dims[1]]  # the graph's input is N, H, W, 3
        shape = "x".join("?" if d < 0 else str(d) for d in dims)
        lines = [f"wrote {self.path} ({self.bytes / 1e6:.1f} MB, opset {self.info.opset}, input {shape} "
                 f"{'uint8 ' + self.info.input_layout if self.info.preprocess else 'float32 nchw'}, output "
                 f"{self.info.output} at {self.info.output_size} size, SPPM pooling {self.info.sppm_pool}"
                 f"{', fp16' if self.info.fp16 else ''}) in {self.seconds:.1f} s"]
        if self.info.trt_profile:
            lines.append("TensorRT profile (min:opt:max): "
                         + ":".join("x".join(map(str, s)) for s in self.info.trt_profile))
        lines += self.notes
        if self.verification is not None:
            lines.append(f"verified in ONNX Runtime against PyTorch: {self.verification.summary()}")
        return "\n".join(lines)


def torch_max_opset() -> int:
    """The newest opset the TorchScript exporter writes."""
    from torch.onnx import _constants

    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17))


@functools.lru_cache(maxsize=1)
def default_opset() -> int:
    """The newest opset both the exporter and the installed ONNX Runtime support."""
    import onnx
    from onnx import helper

    ort = _import_ort()
    for opset in range(torch_max_opset(), MIN_OPSET, -1):
        node = helper.make_node("Relu", ["x"], ["y"])
        vi = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in ("x", "y")]
        probe = helper.make_model(helper.make_graph([node], "probe", vi[:1], vi[1:]),
                                  opset_imports=[helper.make_opsetid("", opset)])
        probe.ir_version = min(probe.ir_version, 8)
        try:
            ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # ORT raises its own Fail/InvalidGraph types for unsupported opsets
            continue
    return MIN_OPSET


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise LitesegError("ONNX export needs onnx and onnxruntime; install them with: "
                           "pip install 'liteseg[onnx]'") from None
    return onnxruntime


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise LitesegError("ONNX export needs onnx and onnxruntime; install them with: "
                           "pip install 'liteseg[onnx]'") from None
    return onnx


def _dynamic_axes(shape: list[int], info: ExportInfo) -> dict[str, dict[int, str]]:
    names = {0: "batch", 2: "height", 3: "width"}
    in_axes = {i: n for i, n in names.items() if shape[i] < 0}
    if info.preprocess and info.input_layout == "nhwc":
        in_axes = {{0: 0, 2: 1, 3: 2}[i]: n for i, n in in_axes.items()}
    out_names = dict(names)
    if info.output_size == "stride":
        out_names.update({2: "height_8", 3: "width_8"})
    out_axes = {i: n for i, n in out_names.items() if shape[i] < 0}
    if info.output == "labels":
        out_axes = {{0: 0, 2: 1, 3: 2}[i]: n for i, n in out_axes.items()}
    return {"x": in_axes, info.output: out_axes}


def build_onnx(source: Any, *, input_shape: str | Sequence[int] | None = None, output: str = "logits",
               labels_dtype: str = "int64", output_size: str = "input", include_preprocess: bool = False,
               input_layout: str = "nchw", opset: int | None = None, fp16: bool = False,
               simplify: bool = False, trt_profile: str | None = None
               ) -> tuple[Any, ExportWrapper, ExportInfo, ModelMeta, list[int]]:
    """Trace ``source`` (anything ``create_backend`` accepts) to an in-memory ONNX ModelProto.

    Returns ``(model_proto, wrapper, info, meta, input_shape)``; the wrapper is the traced module (for
    verification). See :func:`export_onnx` for the options.
    """
    onnx = _import_onnx()
    loaded = resolve_model(source)
    shape = [-1, 3, -1, -1] if input_shape is None else parse_shape(input_shape, dynamic=True, error=ExportError)
    profile = parse_trt_profile(trt_profile, shape) if trt_profile else None
    opset = default_opset() if opset is None else int(opset)
    if not MIN_OPSET <= opset <= torch_max_opset():
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET}..{torch_max_opset()}")
    model = export_copy(loaded.model)
    meta = ModelMeta.from_dict({**loaded.meta.to_dict(), "input_shape": list(shape)})
    preprocess = (meta.mean, meta.std) if include_preprocess else None
    wrapper = ExportWrapper(model, output=output, labels_dtype=labels_dtype, output_size=output_size,
                            preprocess=preprocess, input_layout=input_layout)
    fixed_hw = shape[2] > 0 and shape[3] > 0
    trace_shape = [shape[0] if shape[0] > 0 else 1, 3, shape[2] if shape[2] > 0 else _TRACE_HW[0],
                   shape[3] if shape[3] > 0 else _TRACE_HW[1]]
    example = example_input(trace_shape, wrapper)
    pool_mode = choose_pool_modes(model, wrapper.normalize(example) if fixed_hw else None)
    info = ExportInfo(output=output, labels_dtype=labels_dtype, output_size=output_size,
                      preprocess=include_preprocess, input_layout=input_layout, opset=opset, fp16=fp16,
                      dynamic=any(d < 0 for d in shape), sppm_pool=pool_mode, trt_profile=profile)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shape arithmetic, exporter deprecation notice
        torch.onnx.export(wrapper, (example,), buf, input_names=["x"], output_names=[output], opset_version=opset,
                          dynamic_axes=_dynamic_axes(shape, info), do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = _simplify(proto)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        _import_ort()
        proto = convert_float_to_float16(proto, keep_io_types=True)
    proto.producer_name = "liteseg"
    write_metadata(proto, meta, info)
    return proto, wrapper, info, meta, shape


def _simplify(proto: Any) -> Any:
    try:
        import onnxslim
    except ImportError:
        raise LitesegError("--simplify needs onnxslim; install it with: pip install 'liteseg[simplify]'") from None
    return onnxslim.slim(proto)


def verify_shapes(shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Input shapes to verify a graph with input ``shape`` on (free dims from the default set)."""
    if all(d > 0 for d in shape):
        return [tuple(shape)]
    out: list[tuple[int, ...]] = []
    for default in DEFAULT_VERIFY_SHAPES:
        s = tuple(d if d > 0 else default[i] for i, d in enumerate(shape))
        if s not in out:
            out.append(s)
    return out


def ort_session(model: Any, threads: int | None = None, spinning: bool = True):
    """An ONNX Runtime CPU session from a path, bytes or ModelProto with full graph optimisation."""
    ort = _import_ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif not isinstance(model, bytes):
        model = os.fspath(model)
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def export_onnx(source: Any, path: str | os.PathLike, *, input_shape: str | Sequence[int] | None = None,
                output: str = "logits", labels_dtype: str = "int64", output_size: str = "input",
                include_preprocess: bool = False, input_layout: str = "nchw", opset: int | None = None,
                fp16: bool = False, simplify: bool = False, trt_profile: str | None = None, verify: bool = True,
                verify_shapes_: Sequence[Sequence[int]] | None = None, overwrite: bool = False) -> ExportReport:
    """Export ``source`` (a path ``liteseg.load`` accepts, an nn.Module or a LoadedModel) to ONNX at ``path``.

    * ``input_shape`` ``N,3,H,W`` fixes the input (-1 keeps a dimension dynamic); default: dynamic batch,
      height and width, exact for every size (SPPM's adaptive pooling as matrix products).
    * ``output``: ``logits`` | ``probs`` | ``labels`` (``labels_dtype`` int64 or uint8); ``output_size``:
      ``input`` or ``stride`` (no final resize, 1/8 of the input, rounded up).
    * ``include_preprocess``: uint8 RGB input (``input_layout`` nchw or nhwc), normalisation in the graph.
    * ``opset``: default the newest the exporter and ONNX Runtime support; ``fp16`` stores float16 weights
      (float32 inputs/outputs); ``simplify`` runs onnxslim.
    * ``trt_profile`` ``MIN:OPT:MAX`` (e.g. ``1x3x256x256:1x3x512x1024:1x3x1024x2048``): the TensorRT shape
      profile, validated and stored in the metadata (:mod:`liteseg.export.tensorrt` builds the engine from it).
    * ``verify``: run the graph in ONNX Runtime against PyTorch on ``verify_shapes_`` (default: several sizes);
      on failure nothing is written and :class:`ExportError` is raised.
    """
    start = time.perf_counter()
    path = Path(path)
    if path.exists() and not overwrite:
        raise ExportError(f"{path}: already exists; pass overwrite=True to replace it")
    proto, wrapper, info, meta, shape = build_onnx(
        source, input_shape=input_shape, output=output, labels_dtype=labels_dtype, output_size=output_size,
        include_preprocess=include_preprocess, input_layout=input_layout, opset=opset, fp16=fp16, simplify=simplify,
        trt_profile=trt_profile)
    data = proto.SerializeToString()
    report = ExportReport(path=path, info=info, meta=meta, input_shape=shape, bytes=len(data))
    if shape[2] > 0 and shape[3] > 0 and info.sppm_pool != "native":
        report.notes.append("note: the 1/32 feature map does not divide by every SPPM bin count at this size; "
                            "those pools use the exact matrix form instead of AveragePool")
    if verify:
        report.verification = verify_session(ort_session(data), wrapper, verify_shapes_ or verify_shapes(shape),
                                             fp16=fp16)
        if not report.verification.passed:
            raise ExportError(f"{path}: the exported graph does not match PyTorch "
                              f"({report.verification.summary()}); nothing was written. Use verify=False "
                              f"(--no-verify) to write it anyway")
    atomic_write_bytes(path, data, overwrite=overwrite)
    report.seconds = time.perf_counter() - start
    return report

