"""``liteseg quantize MODEL.onnx -o OUT.onnx --calib IMAGES``: ONNX Runtime INT8 with an accuracy/speed report."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import LitesegError
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="INT8-quantize an exported ONNX model for ONNX Runtime",
                       description="Static INT8 quantization (QDQ, per-channel weights, MinMax calibration on "
                                   "N images), then a report: accuracy change on a labelled list and speed-up.")
    p.add_argument("model", type=Path, help="float32 .onnx written by 'liteseg export'")
    p.add_argument("-o", "--output-file", required=True, type=Path, help="the INT8 .onnx to write")
    p.add_argument("--calib", required=True, help="calibration images: a folder or a list file (first column)")
    p.add_argument("--num-calib", type=options.positive_int, default=32,
                   help="number of calibration images (default 32)")
    p.add_argument("--eval-list", type=Path,
                   help="labelled list file ('image label' per line, e.g. camvid/val.txt) for the accuracy report")
    p.add_argument("--num-eval", type=options.positive_int, help="use only the first N labelled images")
    p.add_argument("--bench-shape", type=options.fixed_shape, help="time FP32 vs INT8 at N,3,H,W (e.g. 1,3,512,1024)")
    p.add_argument("--runs", type=options.positive_int, default=10, help="timed runs (after 3 warm-up runs)")
    p.add_argument("--threads", type=options.threads, default=2, help="ONNX Runtime intra-op threads for the report")
    p.add_argument("--quantize-final-resize", action="store_true",
                   help="also quantize the final full-resolution Resize (kept in float by default)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """quantize's checks: the onnx extra installed, no overwrite."""
    options.require_modules(("onnx", "onnx"), ("onnxruntime", "onnx"), what="liteseg quantize")
    if not args.force:
        options.check_overwrite(args.output_file)


def run(args: argparse.Namespace) -> int:
    from ..quantize import QuantizeReport, compare_int8, list_images, list_labelled, quantize_onnx, record_int8_metrics

    if args.output_file.suffix.lower() != ".onnx":
        raise LitesegError(f"{args.output_file}: the output file must end in .onnx")
    calibration = list_images(args.calib, args.num_calib)
    labelled = list_labelled(args.eval_list, args.num_eval) if args.eval_list else []
    excluded = quantize_onnx(args.model, args.output_file, calibration,
                             keep_final_resize_float=not args.quantize_final_resize, overwrite=args.force)
    report = QuantizeReport(args.output_file, len(calibration), excluded)
    compare_int8(args.model, args.output_file, report, labelled=labelled, bench_shape=args.bench_shape,
                 runs=args.runs, threads=args.threads)
    if labelled:
        record_int8_metrics(report, args.eval_list)
    print(report.summary())
    return 0
