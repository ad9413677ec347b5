"""INT8 static quantization for ONNX Runtime (QDQ, per-channel weights) with an accuracy and speed report."""
from __future__ import annotations

import contextlib
import logging
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from .data.io import read_image, read_label
from .errors import LitesegError
from .evaluation.metrics import SegMetrics
from .export.metadata import load_onnx, read_metadata, write_metadata
from .utils.io import atomic_write_bytes


@dataclass
class QuantizeReport:
    """Accuracy and latency of the INT8 graph next to the float graph it came from."""

    path: Path
    calibration_images: int
    excluded_nodes: list[str] = field(default_factory=list)
    agreement: float = float("nan")  # fraction of pixels where INT8 and FP32 labels agree
    miou_vs_fp32: float = float("nan")  # mIoU of INT8 labels scored against FP32 labels
    eval_images: int = 0
    fp32_miou: float = float("nan")  # on the labelled set
    int8_miou: float = float("nan")
    bench_shape: tuple[int, ...] = ()
    fp32_ms: float = float("nan")
    int8_ms: float = float("nan")
    threads: int = 0
    int8_metrics: dict[str, float] = field(default_factory=dict)  # the INT8 graph's scores on the labelled set

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms

    def summary(self) -> str:
        lines = [f"wrote {self.path} (calibrated on {self.calibration_images} images; kept in float: "
                 f"{', '.join(self.excluded_nodes) or 'nothing'})"]
        if self.eval_images:
            lines.append(f"on {self.eval_images} labelled images: mIoU FP32 {self.fp32_miou:.4f} -> INT8 "
                         f"{self.int8_miou:.4f} ({self.int8_miou - self.fp32_miou:+.4f}); INT8 vs FP32 "
                         f"predictions: {self.agreement:.2%} pixels agree, mIoU {self.miou_vs_fp32:.4f}")
        if self.bench_shape:
            shape = "x".join(map(str, self.bench_shape))
            lines.append(f"ONNX Runtime latency at {shape}, {self.threads} threads (median): FP32 "
                         f"{self.fp32_ms:.1f} ms, INT8 {self.int8_ms:.1f} ms, speed-up {self.speedup:.2f}x")
        return "\n".join(lines)


def list_images(source: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files of a folder (sorted, recursive), a glob or a list file (first column), as ``liteseg predict``."""
    from .inference.inputs import IMAGE_SUFFIXES, is_glob, list_sources

    if not Path(source).exists() and not is_glob(os.fspath(source)):
        raise LitesegError(f"{source}: no such image folder or list file")
    files = [p for p in list_sources(source) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise LitesegError(f"{source}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files[:limit] if limit else files


def list_labelled(list_file: str | os.PathLike, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(image, label) pairs of a PaddleSeg list file (``image label`` per line, relative to its folder)."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise LitesegError(f"{list_file}: no such list file (expected lines 'image_path label_path')")
    pairs = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise LitesegError(f"{list_file}:{n}: expected 'image_path label_path', got {line!r}")
        pairs.append((list_file.parent / parts[0], list_file.parent / parts[1]))
    return pairs[:limit] if limit else pairs


def _fit(array: np.ndarray, size: tuple[int, int] | None, resample: int) -> np.ndarray:
    """``array`` resized to ``size`` (H, W) when given and different."""
    if not size or array.shape[:2] == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))


def _graph_inputs(backend: Any, images: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    """What the graph's input receives for each image (uint8 for baked-in preprocessing)."""
    from .inference.preprocess import normalize

    for img in images:
        if backend.takes_images:
            yield img[None] if backend.info.input_layout == "nhwc" else img.transpose(2, 0, 1)[None].copy()
        else:
            yield normalize(img, backend.meta)


def final_resize(proto: Any) -> list[str]:
    """Name of the last Resize (the full-resolution upsample), to keep in float."""
    resizes = [n for n in proto.graph.node if n.op_type == "Resize"]
    return [resizes[-1].name] if resizes else []


class _DropPreprocessAdvice(logging.Filter):
    """ONNX Runtime logs "consider pre-processing before quantization" (its shape-inference script) on the root
    logger; liteseg's graphs need no such step, so the advice is noise in ``liteseg quantize`` output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocess_advice() -> Iterator[None]:
    root = logging.getLogger()
    drop = _DropPreprocessAdvice()
    root.addFilter(drop)
    handlers = list(root.handlers)
    for h in handlers:  # records of child loggers skip the root's filters but not its handlers'
        h.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        for h in handlers:
            h.removeFilter(drop)


def quantize_onnx(model_path: str | os.PathLike, out_path: str | os.PathLike, calibration: Sequence[Path], *,
                  keep_final_resize_float: bool = True, overwrite: bool = False) -> list[str]:
    """Static INT8 quantization (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration).

    ``calibration``: image files, resized to the graph's fixed size if it has one. Returns the node names kept
    in float. The liteseg metadata is carried over, marked as quantized.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from .inference.backends import create_backend

    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise LitesegError(f"{out_path}: already exists; pass overwrite=True to replace it")
    proto = load_onnx(model_path)
    stored = read_metadata(proto, os.fspath(model_path))
    if stored is not None and (stored[1].quantized or stored[1].fp16):
        raise LitesegError(f"{model_path}: quantize a float32 export, not an already quantized or fp16 one")
    backend = create_backend(model_path, "onnxruntime")
    size = backend.meta.fixed_hw
    excluded = final_resize(proto) if keep_final_resize_float and backend.info.output_size == "input" else []
    name = backend.input_name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            files = tqdm(calibration, desc="calibrating", unit="img")
            images = (_fit(read_image(p), size, Image.BILINEAR) for p in files)
            self.batches = ({name: x} for x in _graph_inputs(backend, images))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = Path(tmp) / "int8.onnx"
        # reduce_range (7-bit weights): U8S8 kernels on x86 CPUs without VNNI (AVX2 only) add pairs of u8*s8
        # products in saturating int16; with 8-bit weights the shipped CamVid model's INT8 labels agreed with FP32
        # on only 85 % of val pixels there (mIoU 0.60 -> 0.47), with 7-bit ones on 99.3 % (mIoU -0.003).
        with _without_preprocess_advice():
            quantize_static(os.fspath(model_path), os.fspath(tmp_out), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=excluded, reduce_range=True)
        result = load_onnx(tmp_out)
    if stored is not None:
        meta, info = stored
        info.quantized = "int8 QDQ (u8 activations, per-channel 7-bit s8 weights)"
        if meta.metrics:  # the float model's scores are not this model's: kept apart until INT8 is measured
            meta.extra["fp32_metrics"], meta.metrics = meta.metrics, {}
        write_metadata(result, meta, info)
    atomic_write_bytes(out_path, result.SerializeToString(), overwrite=overwrite)
    return excluded


def record_int8_metrics(report: QuantizeReport, eval_list: str | os.PathLike) -> None:
    """Store the INT8 scores :func:`compare_int8` measured in the INT8 file's metadata (``liteseg info`` shows
    them as the model's own), with where they come from."""
    proto = load_onnx(report.path)
    stored = read_metadata(proto, os.fspath(report.path))
    if stored is None or not report.int8_metrics:
        return
    meta, info = stored
    meta.metrics = {**report.int8_metrics, "protocol": f"INT8 graph, measured by liteseg quantize on "
                                                       f"{report.eval_images} images of {eval_list}"}
    write_metadata(proto, meta, info)
    atomic_write_bytes(report.path, proto.SerializeToString())


def median_ms(run: Callable[[np.ndarray], Any], x: np.ndarray, runs: int, warmup: int = 3) -> float:
    """Median latency of ``run(x)`` in milliseconds after ``warmup`` runs."""
    from .evaluation.benchmark import time_calls

    return statistics.median(time_calls(run, x, warmup, runs)[0])


def compare_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, report: QuantizeReport, *,
                 labelled: Sequence[tuple[Path, Path]] = (), bench_shape: Sequence[int] | None = None,
                 runs: int = 10, threads: int = 2) -> QuantizeReport:
    """Fill ``report`` with INT8-vs-FP32 accuracy on ``labelled`` pairs and ONNX Runtime latency at ``bench_shape``."""
    from .inference.backends import create_backend

    fp32 = create_backend(fp32_path, "onnxruntime", threads=threads, spinning=False)
    int8 = create_backend(int8_path, "onnxruntime", threads=threads, spinning=False)
    c = fp32.meta.num_classes
    size = fp32.meta.fixed_hw
    on_fp32, on_int8 = SegMetrics(c, fp32.meta.ignore_index), SegMetrics(c, fp32.meta.ignore_index)
    cross = SegMetrics(c, ignore_index=-1)  # INT8 labels scored against FP32 labels
    for image_path, label_path in tqdm(labelled, desc="evaluating", unit="img"):
        image = _fit(read_image(image_path), size, Image.BILINEAR)
        label = _fit(read_label(label_path), size, Image.NEAREST)
        if label.shape != image.shape[:2]:
            raise LitesegError(f"{label_path}: label size {label.shape} differs from image {image.shape[:2]}")
        p32, p8 = fp32.predict(image)[0], int8.predict(image)[0]
        on_fp32.update(p32, label)
        on_int8.update(p8, label)
        cross.update(p8, p32)
    if labelled:
        report.eval_images = len(labelled)
        int8_scores = on_int8.compute()
        report.fp32_miou, report.int8_miou = on_fp32.compute()["miou"], int8_scores["miou"]
        report.int8_metrics = {k: float(int8_scores[k]) for k in ("miou", "acc", "kappa", "mdice") if k in int8_scores}
        agreement = cross.compute()
        report.miou_vs_fp32, report.agreement = agreement["miou"], agreement["acc"]
    if bench_shape:
        report.bench_shape = tuple(bench_shape)
        report.threads = threads
        rng = np.random.default_rng(0)
        n, _, h, w = bench_shape
        if fp32.takes_images:
            x = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
            report.fp32_ms, report.int8_ms = median_ms(fp32.run_images, x, runs), median_ms(int8.run_images, x, runs)
        else:
            x = rng.standard_normal(tuple(bench_shape)).astype(np.float32)
            report.fp32_ms, report.int8_ms = median_ms(fp32, x, runs), median_ms(int8, x, runs)
    return report
