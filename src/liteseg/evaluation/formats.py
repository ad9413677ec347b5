"""``liteseg benchmark --formats all``: export one model to every format and precision, then run each.

Per format, precision and input shape: status (ran / failed and why), file size, max abs logit diff against
PyTorch on a random input, CPU latency (model call only) and its ratio to ONNX Runtime fp32 at the same shape
in the same run; on labelled images (at the first shape): mIoU and argmax agreement with PyTorch.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.io import read_image, read_label
from ..errors import LitesegError
from ..export.edge import export_edge, prepare
from ..export.edge_formats import EDGE_FORMATS, precisions
from ..export.onnx import export_onnx
from ..inference.backends import Backend, backend_for, create_backend
from ..inference.segmenter import Segmenter
from ..loading import resolve_model
from .benchmark import machine_info, run_benchmark
from .metrics import SegMetrics

SUFFIX = {"onnx": ".onnx", "executorch": ".pte", "tflite": ".tflite", "ncnn": ""}


@dataclass
class FormatResult:
    """One format and precision at one input shape."""

    format: str
    precision: str
    shape: list[int]
    status: str = "ran"  # ran | failed: REASON
    bytes: int = 0
    export_s: float = 0.0
    max_abs_diff: float = float("nan")  # vs PyTorch logits on a random input at this shape
    p50_ms: float = float("nan")
    ratio_vs_ort: float = float("nan")  # p50 / ONNX Runtime fp32's p50 at this shape
    miou: float = float("nan")  # on the labelled images (first shape only)
    agreement: float = float("nan")  # argmax agreement with PyTorch on those images
    eval_images: int = 0


@dataclass
class FormatsReport:
    results: list[FormatResult] = field(default_factory=list)
    torch_miou: float = float("nan")
    eval_images: int = 0
    machine: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "torch_miou": self.torch_miou, "eval_images": self.eval_images,
                "results": [asdict(r) for r in self.results]}


def parse_formats(text: str) -> list[tuple[str, str]]:
    """``all`` or ``executorch:int8,tflite,ncnn:fp16`` -> ``[(format, precision)]`` (a bare format: all its
    precisions). ONNX Runtime fp32, the reference, always runs."""
    if text == "all":
        return [(f, p) for f in EDGE_FORMATS for p in precisions(f)]
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        fmt, _, precision = item.partition(":")
        if fmt not in EDGE_FORMATS or (precision and precision not in precisions(fmt)):
            raise LitesegError(f"--formats: unknown {item!r}; choose all or FORMAT[:PRECISION] from "
                               + ", ".join(f"{f} ({'/'.join(precisions(f))})" for f in EDGE_FORMATS))
        out += [(fmt, p) for p in ([precision] if precision else precisions(fmt))]
    return out


def _miou(backend: Backend, pairs: Sequence[tuple[Path, Path]], reference: list[np.ndarray] | None
          ) -> tuple[float, float, list[np.ndarray]]:
    """mIoU on ``pairs``, argmax agreement with ``reference`` labels, and the labels."""
    segmenter = Segmenter(backend)
    metrics, same, total, labels = SegMetrics(backend.meta.num_classes, backend.meta.ignore_index), 0, 0, []
    for i, (image, label) in enumerate(pairs):
        pred = segmenter.predict_rgb([read_image(image)])[0].labels
        metrics.update(pred, read_label(label))
        labels.append(pred)
        if reference is not None:
            same += int((pred == reference[i]).sum())
            total += pred.size
    return metrics.compute()["miou"], same / total if total else float("nan"), labels


def _max_abs_diff(backend: Backend, module: torch.nn.Module, shape: Sequence[int]) -> float:
    x = np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    return float(np.abs(backend(x) - ref).max())


def benchmark_formats(source: Any, workdir: str | os.PathLike, formats: Sequence[tuple[str, str]],
                      shapes: Sequence[Sequence[int]], *, calibration: Sequence[Path] = (),
                      labelled: Sequence[tuple[Path, Path]] = (), threads: int = 2, warmup: int = 3,
                      runs: int = 10, progress: Any = print) -> FormatsReport:
    """Export ``source`` to ONNX fp32 and to each ``(format, precision)`` at each fixed shape in ``workdir``,
    then time, compare and (at the first shape, on ``labelled``) score each."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    loaded = resolve_model(source)
    report = FormatsReport(machine=machine_info(), eval_images=len(labelled))
    torch.set_num_threads(threads)
    reference = None
    if labelled:
        torch_backend = create_backend(loaded, "torch")
        report.torch_miou, _, reference = _miou(torch_backend, labelled, None)
    for i, shape in enumerate(shapes):
        module = prepare(loaded, shape).reference
        tag = "x".join(map(str, shape))
        ort_ms = float("nan")
        for fmt, precision in [("onnx", "fp32"), *formats]:
            result = FormatResult(fmt, precision, list(shape))
            report.results.append(result)
            path = workdir / f"{fmt}_{precision}_{tag}{SUFFIX[fmt]}"
            progress(f"{fmt} {precision} {tag}: exporting")
            try:
                start = time.perf_counter()
                if fmt == "onnx":
                    export_onnx(loaded, path, input_shape=shape, overwrite=True)
                else:
                    export_edge(loaded, path, fmt, precision, input_shape=shape, calibration=calibration,
                                overwrite=True)
                result.export_s = time.perf_counter() - start
                result.bytes = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
                name = backend_for(path)
                backend = create_backend(path, name, threads=threads, **({"spinning": False}
                                                                         if name == "onnxruntime" else {}))
                result.max_abs_diff = _max_abs_diff(backend, module, shape)
                result.p50_ms = run_benchmark(backend, shape, warmup, runs, threads).p50_ms
                if fmt == "onnx":
                    ort_ms = result.p50_ms
                result.ratio_vs_ort = result.p50_ms / ort_ms
                if i == 0 and labelled:
                    result.miou, result.agreement, _ = _miou(backend, labelled, reference)
                    result.eval_images = len(labelled)
                backend.close()
            except Exception as e:  # a format that fails is reported, the others still run
                result.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            progress(f"{fmt} {precision} {tag}: {result.status}")
    return report


def formats_table(report: FormatsReport) -> str:
    """A markdown table of :func:`benchmark_formats`' results: one row per format and precision with its latency
    and ratio to ONNX Runtime fp32 at each shape; size and mIoU at the first shape, the largest max abs diff."""
    shapes = list(dict.fromkeys("x".join(map(str, r.shape)) for r in report.results))
    rows: dict[tuple[str, str], dict[str, FormatResult]] = {}
    for r in report.results:
        rows.setdefault((r.format, r.precision), {})["x".join(map(str, r.shape))] = r
    head = ["format", "precision", "status", "size MB", "max abs diff",
            *(f"{what} {tag}" for tag in shapes for what in ("p50 ms", "vs ORT fp32")), "mIoU", "agreement"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (fmt, precision), by_shape in rows.items():
        first = next(iter(by_shape.values()))
        failed = [f"{tag}: {r.status}" if len(shapes) > 1 else r.status
                  for tag, r in by_shape.items() if r.status != "ran"]
        cells = [fmt, precision, "; ".join(failed) or "ran", _num(first.bytes / 1e6 if first.bytes else NAN, ".1f"),
                 _num(max((r.max_abs_diff for r in by_shape.values()), key=_nan_low), ".2g")]
        for tag in shapes:
            r = by_shape.get(tag)
            cells += [_num(r.p50_ms if r else NAN, ".1f"), _num(r.ratio_vs_ort if r else NAN, ".2f")]
        lines.append("| " + " | ".join([*cells, _num(first.miou, ".4f"), _num(first.agreement, ".2%")]) + " |")
    return "\n".join(lines)


NAN = float("nan")


def _nan_low(v: float) -> float:
    """Sort key that puts NaN (not measured) below every number."""
    return float("-inf") if v != v else v


def _num(v: float, fmt: str) -> str:
    return "–" if v != v else format(v, fmt)
