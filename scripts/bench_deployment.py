"""Deployment numbers for docs/deployment.md: ORT latency of dynamic vs fixed export vs PyTorch eager, INT8.

Usage: PYTHONPATH=src python scripts/bench_deployment.py WEIGHTS CAMVID_DIR OUT_DIR [--runs 10]
WEIGHTS is re-headed to CamVid's 11 classes (random classifiers unless the file already has 11 classes).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from liteseg.inference.backends import create_backend
from liteseg.export.onnx import export_onnx
from liteseg.quantize import QuantizeReport, compare_int8, list_images, list_labelled, quantize_onnx
from liteseg.loading import create_model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("camvid", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model("pp_liteseg_t", num_classes=11, weights=args.weights, reinit_head=True).eval()
    shape = (1, 3, 512, 1024)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    dyn, fix = args.out / "t_dynamic.onnx", args.out / "t_fixed.onnx"
    for path, input_shape in ((dyn, None), (fix, "1,3,512,1024")):
        report = export_onnx(model, path, input_shape=input_shape, overwrite=True,
                             verify_shapes_=[shape] if input_shape else None)
        print(report.summary())
    engines = {"torch eager": create_backend(model, threads=args.threads),
               "ORT dynamic": create_backend(dyn, "onnxruntime", threads=args.threads, spinning=False),
               "ORT fixed": create_backend(fix, "onnxruntime", threads=args.threads, spinning=False)}
    ref = engines["torch eager"](x)
    for name, engine in engines.items():
        times = []
        for _ in range(3):
            engine(x)
        for _ in range(args.runs):
            start = time.perf_counter()
            engine(x)
            times.append((time.perf_counter() - start) * 1e3)
        diff = np.abs(engine(x) - ref).max()
        print(f"{name}: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, "
              f"max abs diff vs torch {diff:.2e}")
    int8 = args.out / "t_dynamic_int8.onnx"
    calib = list_images(args.camvid / "train.txt", 32)
    excluded = quantize_onnx(dyn, int8, calib, overwrite=True)
    report = compare_int8(dyn, int8, QuantizeReport(int8, len(calib), excluded),
                          labelled=list_labelled(args.camvid / "val.txt"), bench_shape=shape, runs=args.runs,
                          threads=args.threads)
    print(report.summary())


if __name__ == "__main__":
    main()
