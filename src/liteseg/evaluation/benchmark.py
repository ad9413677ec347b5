"""Latency, throughput, memory, parameter and FLOP measurements for any model on any backend."""
from __future__ import annotations

import io
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..inference.backends import Backend, create_backend
from ..loading import resolve_model

BENCH_BACKENDS = ("torch", "torch-opt", "torch-compile", "onnxruntime", "openvino")  # create_backend names


@dataclass
class BenchResult:
    """One backend at one input shape. Latencies in milliseconds for one forward pass of the batch."""

    backend: str
    shape: list[int]
    threads: int
    warmup: int
    runs: int
    p50_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    images_per_s: float
    peak_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions, for reports."""
    # platform.processor()/platform.platform() spawn `uname`; os.uname-based calls avoid a subprocess, which
    # crashed the process at exit after OpenVINO and forked DataLoader workers had run in it.
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(),
            "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
            "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    for module in ("onnxruntime", "openvino"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            pass
    return info


def count_params(model: nn.Module) -> dict[str, int]:
    """Learnable parameters in total and in the eval graph (the auxiliary heads excluded)."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    aux = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith("seg_heads.")
              and not n.startswith("seg_heads.0."))
    return {"params": total, "params_inference": total - aux}


def count_macs(model: nn.Module, shape: Sequence[int]) -> int:
    """Multiply-accumulates of all convolutions in one eval forward at ``shape`` (FLOPs = 2 x MACs)."""
    macs = 0

    def hook(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(*shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return macs


class _PeakRSS:
    """Samples this process's resident memory in a thread; ``peak_mb`` after the block."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except OSError:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "_PeakRSS":
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2 ** 20


def time_calls(fn: Callable[[np.ndarray], Any], x: np.ndarray, warmup: int, runs: int) -> tuple[list[float], float]:
    """Wall times (ms) of ``runs`` calls after ``warmup`` calls, and the peak RSS (MB) meanwhile."""
    for _ in range(warmup):
        fn(x)
    times = []
    with _PeakRSS() as rss:
        for _ in range(runs):
            start = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - start) * 1000)
    return times, rss.peak_mb


def make_backend(source: Any, name: str, threads: int | None = None, **options: Any) -> Backend:
    """A backend by registry name; ORT without thread spinning."""
    if name == "onnxruntime":
        options.setdefault("spinning", False)
    if threads:
        options["threads"] = threads
    return create_backend(source, name, **options)


def run_benchmark(backend: Backend, shape: Sequence[int], warmup: int = 5, runs: int = 20,
                  threads: int | None = None, seed: int = 0) -> BenchResult:
    """Time ``backend`` on random normalised input of ``shape`` (model call only, no pre/post-processing).

    A compiling backend compiles on its first call of a shape, outside the timings; ``extra["compile_s"]``.
    A graph with baked-in preprocessing gets random uint8 images ``[N, H, W, 3]`` of that size instead.
    """
    rng = np.random.RandomState(seed)
    if backend.takes_images:
        n, _, h, w = shape
        fn, x = backend.run_images, rng.randint(0, 256, (n, h, w, 3)).astype(np.uint8)
    else:
        fn, x = backend, rng.standard_normal(tuple(shape)).astype(np.float32)
    extra: dict[str, Any] = {}
    compile_seconds = getattr(backend, "compile_seconds", None)
    if compile_seconds is not None:
        fn(x)
        extra["compile_s"] = compile_seconds[tuple(shape)]
    times, peak = time_calls(fn, x, warmup, runs)
    p50 = float(np.percentile(times, 50))
    return BenchResult(backend=backend.name, shape=list(shape), threads=threads or torch.get_num_threads(),
                       warmup=warmup, runs=runs, p50_ms=p50, p90_ms=float(np.percentile(times, 90)),
                       min_ms=float(min(times)), mean_ms=float(np.mean(times)),
                       images_per_s=shape[0] * 1000.0 / p50, peak_rss_mb=peak, extra=extra)


def model_stats(source: Any, shape: Sequence[int]) -> dict[str, Any]:
    """Parameter counts and conv MACs/FLOPs of a PyTorch-loadable model at ``shape``."""
    loaded = resolve_model(source)
    macs = count_macs(loaded.model, shape)
    return {"arch": loaded.meta.arch, **count_params(loaded.model), "macs": macs, "flops": 2 * macs}


def results_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width text table of results."""
    head = (f"{'backend':<14} {'shape':<16} {'p50 ms':>9} {'p90 ms':>9} {'min ms':>9} {'img/s':>8} {'peak MB':>8} "
            f"{'compile s':>9}")
    rows = [head, "-" * len(head)]
    for r in results:
        compile_s = f"{r.extra['compile_s']:>9.1f}" if "compile_s" in r.extra else f"{'-':>9}"
        rows.append(f"{r.backend:<14} {'x'.join(map(str, r.shape)):<16} {r.p50_ms:>9.1f} {r.p90_ms:>9.1f} "
                    f"{r.min_ms:>9.1f} {r.images_per_s:>8.2f} {r.peak_rss_mb:>8.0f} {compile_s}")
    return "\n".join(rows)


def plot_results(results: Sequence[BenchResult], path: str | os.PathLike) -> None:
    """Bar chart of median latency per backend, grouped by shape, written atomically as PNG."""
    from ..utils.io import atomic_write_bytes
    from ..utils.plots import figure

    shapes = sorted({"x".join(map(str, r.shape)) for r in results})
    backends = list(dict.fromkeys(r.backend for r in results))
    fig = figure(max(5, 1.6 * len(shapes) * len(backends)), 4, purpose="benchmark --plot")
    ax = fig.add_subplot()
    width = 0.8 / max(len(backends), 1)
    for i, b in enumerate(backends):
        values = [next((r.p50_ms for r in results if r.backend == b and "x".join(map(str, r.shape)) == s), 0.0)
                  for s in shapes]
        bars = ax.bar([j + i * width for j in range(len(shapes))], values, width, label=b)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks([j + width * (len(backends) - 1) / 2 for j in range(len(shapes))], shapes)
    ax.set_ylabel("median latency (ms)")
    ax.set_title("liteseg benchmark")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getbuffer(), overwrite=True)


def to_json(results: Sequence[BenchResult], stats: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"machine": machine_info(), "model": stats or {}, "results": [asdict(r) for r in results]}
