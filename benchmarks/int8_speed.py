"""Is the INT8 graph faster than the FP32 one? A benchmark, not a test: exits 1 when INT8 is not faster.

    python benchmarks/int8_speed.py --camvid ../shared/data/camvid [--shape 1,3,512,1024] [--runs 20]

Exports the shipped CamVid model (dynamic shapes), quantizes it with 8 CamVid training images, and times both
graphs in ONNX Runtime (same threads, warm-up, median of ``--runs`` model calls).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from liteseg.export.onnx import export_onnx
from liteseg.quantize import QuantizeReport, compare_int8, quantize_onnx


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camvid", type=Path, required=True, help="CamVid folder with train.txt")
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    lines = [line.split()[0] for line in (args.camvid / "train.txt").read_text().split("\n") if line.strip()]
    calib = [args.camvid / name for name in lines[::len(lines) // 8 or 1][:8]]
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx("camvid", fp32, verify=False)
        excluded = quantize_onnx(fp32, int8, calib)
        report = compare_int8(fp32, int8, QuantizeReport(int8, len(calib), excluded), bench_shape=shape,
                              runs=args.runs, threads=args.threads)
    print(f"{args.shape}, {args.threads} threads, median of {args.runs}: FP32 {report.fp32_ms:.1f} ms, "
          f"INT8 {report.int8_ms:.1f} ms, speed-up {report.speedup:.2f}x")
    return 0 if report.int8_ms < report.fp32_ms else 1


if __name__ == "__main__":
    sys.exit(main())
