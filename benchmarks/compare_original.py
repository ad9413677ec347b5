"""Side-by-side with the original stack, timed in ONE run: Paddle Inference (oneDNN) and ONNX Runtime on the
paddle2onnx model versus liteseg's backends, on the same random weights, after checking the outputs agree.

    python benchmarks/compare_original.py --install             # make ./.paddle-venv with the pinned stack
    python benchmarks/compare_original.py --paddle-python PATH  # or use an existing Paddle venv's python

The original side runs in the Paddle venv (benchmarks/paddle_side.py); liteseg runs here. Prints a table with
ratios liteseg/original and writes results JSON + markdown into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import liteseg
from liteseg.evaluation.benchmark import machine_info, make_backend, run_benchmark
from liteseg.export.onnx import export_onnx

HERE = Path(__file__).resolve().parent
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


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x"


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


def compare(name: str, python: Path, args: argparse.Namespace) -> dict:
    out = args.out / name
    shape = [int(v) for v in args.shape.split(",")]
    print(f"[{name}] original stack (Paddle {args.threads} threads) ...", flush=True)
    subprocess.run([str(python), str(HERE / "paddle_side.py"), "--model", name, "--shape", args.shape,
                    "--out", str(out), "--warmup", str(args.warmup), "--runs", str(args.runs),
                    "--threads", str(args.threads)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL if not args.verbose else None)
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
    rows = {}
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
    for label, source in sources.items():
        backend_name = label.split(" ")[0]
        backend = make_backend(source, backend_name, threads=args.threads)
        result = run_benchmark(backend, shape, args.warmup, args.runs, args.threads)
        diff = float(np.abs(backend(x) - reference).max()) if "INT8" not in label else float("nan")
        rows[label] = {"p50_ms": result.p50_ms, "min_ms": result.min_ms, "max_abs_diff": diff}
        if label == "onnxruntime (dynamic)" and args.batch4:
            b4 = run_benchmark(backend, [4, *shape[1:]], max(1, args.warmup // 2), max(3, args.runs // 4),
                               args.threads)
            rows[label]["batch4_images_per_s"] = b4.images_per_s
            rows[label]["batch1_images_per_s"] = result.images_per_s
        backend.close()
        print(f"[{name}] {label}: {result.p50_ms:.1f} ms", flush=True)
    return {"original": original, "liteseg": rows, "parity_vs_dygraph": parity}


def markdown(results: dict, args: argparse.Namespace) -> str:
    lines = [f"Shape {args.shape}, {args.threads} threads, {args.warmup} warm-up + {args.runs} timed runs, median "
             f"(min) ms, model call only. Ratios: liteseg / original (lower is better).", "",
             "| model | engine | median (min) ms | vs Paddle Inference oneDNN | vs ORT on paddle2onnx | max abs diff "
             "vs PaddleSeg |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        pd, p2o = r["original"]["paddle_inference_onednn"], r["original"]["ort_paddle2onnx"]
        lines.append(f"| {name.upper()} | Paddle Inference (oneDNN) | {pd['p50_ms']:.0f} ({pd['min_ms']:.0f}) | 1.00x | "
                     f"{ratio(pd['p50_ms'], p2o['p50_ms'])} | {r['original']['diff_inference_vs_dygraph']:.1e} |")
        lines.append(f"| {name.upper()} | ORT on paddle2onnx (fixed) | {p2o['p50_ms']:.0f} ({p2o['min_ms']:.0f}) | "
                     f"{ratio(p2o['p50_ms'], pd['p50_ms'])} | 1.00x | {r['original']['diff_ort_vs_dygraph']:.1e} |")
        for label, row in r["liteseg"].items():
            diff = "–" if np.isnan(row["max_abs_diff"]) else f"{row['max_abs_diff']:.1e}"
            lines.append(f"| {name.upper()} | liteseg {label} | {row['p50_ms']:.0f} ({row['min_ms']:.0f}) | "
                         f"{ratio(row['p50_ms'], pd['p50_ms'])} | {ratio(row['p50_ms'], p2o['p50_ms'])} | {diff} |")
        dyn = r["liteseg"].get("onnxruntime (dynamic)", {})
        if "batch4_images_per_s" in dyn:
            lines.append(f"| {name.upper()} | liteseg onnxruntime batch 4 vs 1 | "
                         f"{dyn['batch4_images_per_s']:.2f} vs {dyn['batch1_images_per_s']:.2f} img/s | | "
                         f"{dyn['batch4_images_per_s'] / dyn['batch1_images_per_s']:.2f}x throughput | |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paddle-python", type=Path, help="python of an environment with paddlepaddle + paddleseg")
    p.add_argument("--install", action="store_true", help="create --venv with the pinned original stack first")
    p.add_argument("--venv", type=Path, default=Path(".paddle-venv"))
    p.add_argument("--models", default="t,b")
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
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
