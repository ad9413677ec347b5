"""What the edge exports share: fixed-shape preparation, exact SPPM pooling, metadata, verification.

The formats (ExecuTorch ``.pte``, LiteRT ``.tflite``, an ncnn folder) live in their own modules and import
their converter lazily; :func:`export_edge` dispatches to them. Every edge model has a fixed input shape
(callers resize to it, as for a fixed-shape ONNX graph) and carries liteseg's metadata: the shape,
mean/std, class names and how it was exported.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import FormatError, LitesegError, install_hint
from ..loading import resolve_model
from ..meta import ModelMeta
from ..models.layers import ConvBN
from ..models.sppm import AdaptiveAvgPool, _bin_matrix
from ..registry import did_you_mean
from ..utils.shapes import parse_shape
from .edge_formats import EDGE_FORMATS, precisions
from .metadata import ExportInfo
from .verify import FP16_RTOL, FP32_RTOL, example_input
from .wrappers import ExportWrapper, choose_pool_modes, export_copy

DEFAULT_SHAPE = (1, 3, 512, 512)
# int8 exports must give the float model's label on at least this share of the pixels of the check input
MIN_INT8_AGREEMENT = 0.9


class EdgeExportError(LitesegError):
    """An edge export could not be made or does not match PyTorch."""


@dataclass
class EdgeCheck:
    """The exported file run in its runtime against PyTorch on one input."""

    max_abs_diff: float
    agreement: float  # share of pixels with the same argmax
    tolerance: float  # on max_abs_diff (float precisions) or 1 - agreement (int8)
    ok: bool

    def summary(self) -> str:
        return (f"max abs diff {self.max_abs_diff:.3g}, argmax agreement {self.agreement:.2%} "
                f"({'ok' if self.ok else 'FAILED'}, tolerance {self.tolerance:.3g})")


@dataclass
class EdgeReport:
    """What :func:`export_edge` wrote and how it checked it."""

    path: Path
    format: str
    precision: str
    input_shape: list[int]
    bytes: int = 0
    seconds: float = 0.0
    check: EdgeCheck | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        lines = [f"wrote {self.path} ({self.format} {self.precision}, {self.bytes / 1e6:.1f} MB, fixed input "
                 f"{shape} float32 nchw) in {self.seconds:.1f} s", *self.notes]
        if self.check is not None:
            lines.append(f"checked in the runtime against PyTorch: {self.check.summary()}")
        return "\n".join(lines)


class MatrixPool(nn.Module):
    """Adaptive average pooling of a fixed-size map as ``P_h @ x @ P_w^T`` with constant bin matrices.

    The exact rewrite of :func:`~liteseg.models.sppm.adaptive_avg_pool2d_matmul` for one size: only MatMul,
    which every edge runtime has, where the map does not divide by the bin count (overlapping bins).
    """

    def __init__(self, bins: int, size: tuple[int, int]) -> None:
        super().__init__()
        like = torch.zeros(())
        self.register_buffer("p_h", _bin_matrix(size[0], bins, like))
        self.register_buffer("p_w_t", _bin_matrix(size[1], bins, like).t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.p_h, x), self.p_w_t)


@dataclass
class Prepared:
    """A model ready to convert: the module the converters trace (batch norms folded), the same model unfolded
    (the reference exports are checked against), its metadata (with the fixed shape) and an example input."""

    wrapper: ExportWrapper
    reference: ExportWrapper
    meta: ModelMeta
    shape: list[int]
    example: torch.Tensor
    sppm_pool: str


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each batch norm into the convolution before it (PP-LiteSeg's ``ConvBN`` blocks and conv, batch norm
    pairs of an ``nn.Sequential``), in place, with the eval statistics.

    The converters fold them too, but only after tracing, decomposing and checking them: folded first, the
    graph they process has half the nodes (260 instead of 530 for PP-LiteSeg-T), and ExecuTorch and LiteRT
    convert it in about half and a third of the time.
    """
    for module in list(model.modules()):
        if not isinstance(module, (ConvBN, nn.Sequential)):
            continue
        names = list(module._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model


def fixed_shape(text: str | Sequence[int] | None, meta: ModelMeta) -> list[int]:
    """The fixed ``N,3,H,W`` of an edge export: ``text``, else the model's fixed shape, else 1x3x512x512."""
    shape = parse_shape(text, dynamic=True, error=EdgeExportError) if text is not None else None
    if shape is None:
        shape = list(meta.input_shape) if meta.fixed_hw else list(DEFAULT_SHAPE)
        shape[0] = max(shape[0], 1)
    if any(d < 1 for d in shape):
        raise EdgeExportError(f"input shape {'x'.join(map(str, shape))}: edge runtimes need a fixed shape "
                              f"(no -1), e.g. 1,3,512,512")
    return shape


def prepare(source: Any, input_shape: str | Sequence[int] | None = None, matmul_pools: bool = False) -> Prepared:
    """Load ``source``, fix its input shape and make SPPM's pooling exact for every edge runtime.

    Pools whose map divides by the bin count stay adaptive pooling (an AvgPool with kernel = stride, or a
    mean for bin 1); the others, or all with ``matmul_pools``, become :class:`MatrixPool`. No op is
    approximated; batch norms are folded into their convolutions (:func:`fold_batch_norms`) in the module the
    converters get.
    """
    loaded = resolve_model(source)
    shape = fixed_shape(input_shape, loaded.meta)
    model = export_copy(loaded.model)
    wrapper = ExportWrapper(model)
    example = example_input(shape, wrapper)
    modes = choose_pool_modes(model, None if matmul_pools else example)
    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: sizes.__setitem__(m, tuple(a[0].shape[2:])))
             for m in model.modules() if isinstance(m, AdaptiveAvgPool)]
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AdaptiveAvgPool) and child.mode == "matmul":
                setattr(parent, name, MatrixPool(child.bins, sizes[child]))
    meta = ModelMeta.from_dict({**loaded.meta.to_dict(), "input_shape": list(shape)})
    folded = ExportWrapper(fold_batch_norms(copy.deepcopy(model))).eval()
    return Prepared(folded, wrapper.eval(), meta, shape, example, modes)


def _convert(module: Any, fmt: str, prepared: Prepared, path: Path, precision: str,
             calibration: Sequence[torch.Tensor], metadata: str) -> None:
    """``module.write(...)``; a converter's own failure becomes one EdgeExportError naming format, precision and
    shape (the converters raise ValueError, RuntimeError and their own types from deep inside)."""
    try:
        module.write(prepared, path, precision, calibration, metadata)
    except LitesegError:
        raise
    except Exception as e:  # noqa: BLE001 - a third-party converter's failure, reported with its reason
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EdgeExportError(f"the {fmt} {precision} conversion failed at input shape "
                              f"{'x'.join(map(str, prepared.shape))} ({type(e).__name__}: {reason[:400]}); try "
                              f"another --input-shape or --precision, or report this message") from e


def metadata_text(meta: ModelMeta, fmt: str, precision: str, sppm_pool: str) -> str:
    """The JSON an edge model carries: ``{"meta", "export", "edge": {"format", "precision"}}``."""
    info = ExportInfo(dynamic=False, sppm_pool=sppm_pool, fp16=precision == "fp16",
                      quantized="int8" if precision == "int8" else "")
    return json.dumps({"meta": meta.to_dict(), "export": asdict(info),
                       "edge": {"format": fmt, "precision": precision}})


def parse_metadata(text: str | bytes, source: str) -> tuple[ModelMeta, ExportInfo, dict[str, str]]:
    """``(meta, export info, {"format", "precision"})`` from :func:`metadata_text`'s JSON."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("meta", "export", "edge")):
            raise ValueError("expected an object with 'meta', 'export' and 'edge' objects")
        return ModelMeta.from_dict(data["meta"]), ExportInfo(**data["export"]), dict(data["edge"])
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"{source}: the liteseg metadata of this model is damaged ({e}); re-export it with "
                          f"'liteseg export'") from None


def format_module(fmt: str) -> Any:
    """The module of edge format ``fmt`` (:data:`~liteseg.export.edge_formats.EDGE_FORMATS`), or a LitesegError
    suggesting a close name or naming the extra to install."""
    return EDGE_FORMATS.get(fmt)


@contextlib.contextmanager
def quiet(*fds: int) -> Iterator[None]:
    """Silence the C-level output on ``fds`` (1 stdout, 2 stderr): converters and runtimes log there; liteseg
    reports their failures itself."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "wb") as null, open(os.devnull, "w") as text, contextlib.ExitStack() as stack:
            for fd in fds:
                os.dup2(null.fileno(), fd)
                # bindings may print through Python's sys.stdout/sys.stderr (replaced in tests) instead
                stack.enter_context((contextlib.redirect_stdout if fd == 1 else contextlib.redirect_stderr)(text))
            yield
    finally:
        for fd, kept in zip(fds, saved):
            os.dup2(kept, fd)
            os.close(kept)


def import_converter(fmt: str, name: str) -> Any:
    """Import the converter package ``name`` of format ``fmt`` (not needed to run its files), with a hint."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise LitesegError(f"{fmt} export needs {name}, which is missing ({e.name}); install it with: "
                           f"{install_hint(EDGE_FORMATS.entry(fmt).extra or fmt)}") from None


def check_runner(run: Callable[[np.ndarray], np.ndarray], prepared: Prepared, precision: str,
                 x: torch.Tensor | None = None) -> EdgeCheck:
    """Compare ``run`` (normalised NCHW -> logits) with PyTorch (the unfolded model) on ``x`` (default: a random
    input).

    fp32 must match to 1e-5 of the logits' largest magnitude (as ONNX exports), fp16 to 2 %, int8 must
    give the same argmax on :data:`MIN_INT8_AGREEMENT` of the pixels.
    """
    x = prepared.example if x is None else x
    with torch.no_grad():
        ref = prepared.reference(x).numpy()
    got = run(x.numpy())
    if got.shape != ref.shape:
        return EdgeCheck(float("inf"), 0.0, 0.0, False)
    diff = float(np.abs(got - ref).max())
    agreement = float((got.argmax(1) == ref.argmax(1)).mean())
    scale = float(np.abs(ref).max())
    if precision == "int8":
        tol = 1 - MIN_INT8_AGREEMENT
        return EdgeCheck(diff, agreement, tol, agreement >= MIN_INT8_AGREEMENT)
    tol = (FP16_RTOL if precision == "fp16" else FP32_RTOL) * scale
    return EdgeCheck(diff, agreement, tol, bool(np.isfinite(diff)) and diff <= tol)


def calibration_inputs(files: Sequence[str | os.PathLike], prepared: Prepared) -> list[torch.Tensor]:
    """Network inputs ``[1, 3, H, W]`` of image files, resized (bilinear) to the export's fixed size."""
    from PIL import Image

    from ..data.io import read_image
    from ..images import normalize

    n, _, h, w = prepared.shape
    mean = np.asarray(prepared.meta.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(prepared.meta.std, np.float32).reshape(3, 1, 1)
    out = []
    for f in files:
        image = read_image(f)
        if image.shape[:2] != (h, w):
            image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        x = normalize(image.transpose(2, 0, 1).astype(np.float32), mean, std).astype(np.float32)
        out.append(torch.from_numpy(np.repeat(x[None], n, axis=0)))
    return out


def export_edge(source: Any, path: str | os.PathLike, fmt: str, precision: str = "fp32", *,
                input_shape: str | Sequence[int] | None = None, calibration: Sequence[str | os.PathLike] = (),
                verify: bool = True, overwrite: bool = False) -> EdgeReport:
    """Export ``source`` to ``fmt`` (executorch, tflite, ncnn) at ``precision`` and check it in its runtime.

    ``calibration``: image files for int8 (resized to the export's shape; the first one is also the int8
    check's input, float precisions are checked on a random input). On a failed check nothing is written
    (``verify=False`` writes anyway).
    """
    start = time.perf_counter()
    module = format_module(fmt)
    if precision not in precisions(fmt):
        raise EdgeExportError(f"{fmt}: no {precision} precision; {did_you_mean(precision, precisions(fmt))}")
    path = Path(path)
    module.check_path(path)
    if path.exists() and not overwrite:
        raise EdgeExportError(f"{path}: already exists; pass --force (overwrite=True) to replace it")
    if precision == "int8" and not calibration:
        raise EdgeExportError(f"{fmt} int8 needs calibration images (--calib IMAGES, e.g. camvid/train.txt)")
    prepared = prepare(source, input_shape, matmul_pools=precision in getattr(module, "MATMUL_POOL_PRECISIONS", ()))
    calib = calibration_inputs(calibration, prepared) if precision == "int8" else []
    text = metadata_text(prepared.meta, fmt, precision, prepared.sppm_pool)
    report = EdgeReport(path=path, format=fmt, precision=precision, input_shape=prepared.shape)
    with module.staged(path, overwrite) as tmp:
        _convert(module, fmt, prepared, tmp, precision, calib, text)
        if verify:
            runner = module.open_runner(tmp)
            report.check = check_runner(runner, prepared, precision, calib[0] if calib else None)
            if not report.check.ok:
                raise EdgeExportError(f"{path}: the {fmt} {precision} export does not match PyTorch "
                                      f"({report.check.summary()}); nothing was written. Use --no-verify "
                                      f"(verify=False) to write it anyway")
        report.bytes = module.size(tmp)
    report.seconds = time.perf_counter() - start
    return report
