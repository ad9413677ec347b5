"""Side-by-side with the original stack, timed in ONE run: Paddle Inference (oneDNN) and ONNX Runtime on the
paddle2onnx model versus liteseg's backends, on the same random weights, after checking the outputs agree.

    python benchmarks/compare_original.py --install             # make ./.paddle-venv with the pinned stack
    python benchmarks/compare_original.py --paddle-python PATH  # or use an existing Paddle venv's python

The original side runs in the Paddle venv (benchmarks/paddle_side.py, kept running); liteseg runs here. The
engines are timed interleaved: --rounds rounds, each one block of --runs calls per engine in rotated order, and
each ratio is the median over rounds of block medians of the same round, so the machine's drift cancels. Prints
a table with ratios liteseg/original and writes results JSON + markdown into --out.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import liteseg
from liteseg.evaluation.benchmark import machine_info, make_backend, run_benchmark, time_calls
from liteseg.export.onnx import export_onnx

HERE = Path(__file__).resolve().parent
PADDLE, P2O = "Paddle Inference (oneDNN)", "ORT on paddle2onnx (fixed)"
PINNED = ["paddlepaddle==2.6.2", "paddle2onnx==1.3.1", "numpy<2", "onnxruntime", "onnx", "pyyaml", "six",
          "opencv-python-headless==4.6.0.66", "tqdm", "filelock", "scipy", "scikit-learn", "prettytable",
          "requests"]


def install(venv: Path) -> Path:
    """Create ``venv`` with PaddlePaddle 2.6 + PaddleSeg 2.8 + paddle2onnx (PaddleSeg without its heavy extras)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINNED], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "paddleseg==2.8.0"], check=True)
    return python


def calibration_images(folder: Path | None, count: int, shape: list[int], out: Path) -> list[Path]:
    """Calibration images for INT8: real images from ``folder`` if given, else seeded noise images."""
    if folder is not None:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))[:count]
        if files:
            return files
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    paths = []
    for i in range(count):
        path = out / f"noise_{i}.png"
        Image.fromarray(rng.randint(0, 255, (shape[2], shape[3], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class PaddleSide:
    """The original stack in its own venv (paddle_side.py), kept running to time blocks of calls on request."""

    def __init__(self, python: Path, name: str, args: argparse.Namespace, out: Path) -> None:
        self.proc = subprocess.Popen([str(python), str(HERE / "paddle_side.py"), "--model", name, "--shape",
                                      args.shape, "--out", str(out), "--threads", str(args.threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     stderr=None if args.verbose else subprocess.DEVNULL)
        if self._read() != "ready":
            raise RuntimeError("paddle_side.py did not start (rerun with --verbose)")

    def _read(self) -> object:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise RuntimeError(f"paddle_side.py ended (exit code {self.proc.wait()}; rerun with --verbose)")

    def block(self, engine: str, warmup: int, runs: int) -> list[float]:
        self.proc.stdin.write(f"{engine} {warmup} {runs}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.communicate("quit\n")


def interleaved(blocks: dict[str, Callable[[int, int], list[float]]], args: argparse.Namespace,
                name: str) -> dict[str, list[list[float]]]:
    """``args.rounds`` rounds of one block of ``args.runs`` calls per engine, the order rotated every round."""
    labels = list(blocks)
    series: dict[str, list[list[float]]] = {label: [] for label in labels}
    for label in labels:  # warm-up, outside the timings
        blocks[label](args.warmup, 0)
    for r in range(args.rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            time.sleep(args.pause)  # let the other side's idle threads stop spinning
            series[label].append(blocks[label](1, args.runs))
        print(f"[{name}] round {r + 1}/{args.rounds}: " + ", ".join(
            f"{label} {np.median(series[label][-1]):.0f}" for label in labels) + " ms", flush=True)
    return series


def summarise(series: dict[str, list[list[float]]], diffs: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per engine: median and min of all calls, and the median over rounds of the ratio of its block median to
    each original engine's block median of the same round (paired, so drift between rounds cancels)."""
    medians = {label: np.array([np.median(b) for b in blocks]) for label, blocks in series.items()}
    rows = {}
    for label, blocks in series.items():
        calls = np.concatenate(blocks)
        row = {"p50_ms": float(np.median(calls)), "min_ms": float(calls.min()),
               "max_abs_diff": diffs.get(label, float("nan")), "round_medians_ms": medians[label].tolist()}
        for key, reference in (("vs_paddle", PADDLE), ("vs_p2o", P2O)):
            paired = medians[label] / medians[reference]
            row[key], row[f"{key}_range"] = float(np.median(paired)), [float(paired.min()), float(paired.max())]
        rows[label] = row
    return rows


def compare(name: str, python: Path, args: argparse.Namespace) -> dict:
    out = args.out / name
    shape = [int(v) for v in args.shape.split(",")]
    print(f"[{name}] original stack: build, export, paddle2onnx ...", flush=True)
    paddle = PaddleSide(python, name, args, out)
    original = json.loads((out / "results.json").read_text())
    loaded = liteseg.load(out / "model.pdparams")
    x = np.load(out / "input.npy")
    reference = np.load(out / "paddle_logits.npy")
    ours = make_backend(loaded, "torch", threads=args.threads)(x)
    parity = float(np.abs(ours - reference).max())
    print(f"[{name}] liteseg vs PaddleSeg dygraph logits: max abs diff {parity:.2e}", flush=True)
    dyn = out / "liteseg_dynamic.onnx"
    fixed = out / "liteseg_fixed.onnx"
    export_onnx(loaded, dyn, overwrite=True)
    export_onnx(loaded, fixed, input_shape=shape, overwrite=True)
    sources = {"torch": loaded, "torch-opt": loaded, "torch-compile": loaded, "onnxruntime (dynamic)": dyn,
               "onnxruntime (fixed)": fixed}
    if not args.skip_openvino:
        sources["openvino (dynamic)"] = dyn
    if not args.skip_int8:
        from liteseg.quantize import quantize_onnx

        int8 = out / "liteseg_int8.onnx"
        quantize_onnx(dyn, int8, calibration_images(args.calib, args.calib_count, shape, out / "calib"),
                      overwrite=True)
        sources["onnxruntime INT8 (dynamic)"] = int8
    blocks: dict[str, Callable[[int, int], list[float]]] = {
        PADDLE: lambda w, n: paddle.block("paddle", w, n), P2O: lambda w, n: paddle.block("p2o", w, n)}
    diffs = {PADDLE: original["diff_inference_vs_dygraph"], P2O: original["diff_ort_vs_dygraph"]}
    backends, extra = [], {}
    for label, source in sources.items():
        backend = make_backend(source, label.split(" ")[0], threads=args.threads)
        backends.append(backend)
        start = time.perf_counter()
        y = backend(x)
        if label == "torch-compile":
            extra["torch_compile_first_call_s"] = time.perf_counter() - start
        if "INT8" not in label:
            diffs[f"liteseg {label}"] = float(np.abs(y - reference).max())
        blocks[f"liteseg {label}"] = lambda w, n, b=backend: time_calls(b, x, w, n)[0]
    try:
        rows = summarise(interleaved(blocks, args, name), diffs)
        if args.batch4:
            ort_dyn = backends[list(sources).index("onnxruntime (dynamic)")]
            b4 = run_benchmark(ort_dyn, [4, *shape[1:]], max(1, args.warmup // 2), max(3, args.runs // 2),
                               args.threads)
            b1 = run_benchmark(ort_dyn, shape, max(1, args.warmup // 2), max(3, args.runs // 2), args.threads)
            extra["ort_batch4_images_per_s"], extra["ort_batch1_images_per_s"] = b4.images_per_s, b1.images_per_s
    finally:
        for backend in backends:
            backend.close()
        paddle.close()
    return {"original": original, "rows": rows, "parity_vs_dygraph": parity, **extra}


def markdown(results: dict, args: argparse.Namespace) -> str:
    lines = [f"Shape {args.shape}, {args.threads} threads; {args.rounds} rounds, each one block of {args.runs} calls "
             f"per engine (rotated order); median (min) ms of all calls, model call only. Ratios: liteseg / original "
             f"(lower is better), the median over rounds of the block-median ratio of the same round, "
             f"[lowest, highest round].", "",
             "| model | engine | median (min) ms | vs Paddle Inference oneDNN | vs ORT on paddle2onnx | max abs diff "
             "vs PaddleSeg |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for label, row in r["rows"].items():
            diff = "–" if np.isnan(row["max_abs_diff"]) else f"{row['max_abs_diff']:.1e}"
            lo, hi = row["vs_paddle_range"]
            lo2, hi2 = row["vs_p2o_range"]
            lines.append(f"| {name.upper()} | {label} | {row['p50_ms']:.0f} ({row['min_ms']:.0f}) | "
                         f"{row['vs_paddle']:.2f}x [{lo:.2f}, {hi:.2f}] | {row['vs_p2o']:.2f}x [{lo2:.2f}, {hi2:.2f}] "
                         f"| {diff} |")
        if "ort_batch4_images_per_s" in r:
            b4, b1 = r["ort_batch4_images_per_s"], r["ort_batch1_images_per_s"]
            lines.append(f"| {name.upper()} | liteseg onnxruntime batch 4 vs 1 | {b4:.2f} vs {b1:.2f} img/s | | "
                         f"{b4 / b1:.2f}x throughput | |")
        if "torch_compile_first_call_s" in r:
            lines.append(f"| {name.upper()} | liteseg torch-compile first call (compile) | "
                         f"{r['torch_compile_first_call_s']:.1f} s | | | |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paddle-python", type=Path, help="python of an environment with paddlepaddle + paddleseg")
    p.add_argument("--install", action="store_true", help="create --venv with the pinned original stack first")
    p.add_argument("--venv", type=Path, default=Path(".paddle-venv"))
    p.add_argument("--models", default="t,b")
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per engine before the first round")
    p.add_argument("--runs", type=int, default=10, help="timed calls per engine per round")
    p.add_argument("--rounds", type=int, default=6, help="rounds; each times every engine once, order rotated")
    p.add_argument("--pause", type=float, default=0.5, help="seconds of rest before each block")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calib", type=Path, help="folder of images for INT8 calibration (default: noise images)")
    p.add_argument("--calib-count", type=int, default=16)
    p.add_argument("--skip-int8", action="store_true")
    p.add_argument("--skip-openvino", action="store_true")
    p.add_argument("--batch4", action="store_true", help="also time batch 4 on ORT (throughput ratio)")
    p.add_argument("--out", type=Path, default=Path("runs/compare_original"))
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    python = install(args.venv) if args.install else args.paddle_python
    if python is None or not Path(python).exists():
        p.error("pass --paddle-python PATH (a venv with paddlepaddle 2.6 + paddleseg 2.8) or --install")
    start = time.perf_counter()
    results = {name: compare(name, Path(python), args) for name in args.models.split(",")}
    table = markdown(results, args)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()}, "results": results,
              "seconds": time.perf_counter() - start}
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    (args.out / "results.md").write_text(table + "\n")
    print(f"\nwrote {args.out / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
