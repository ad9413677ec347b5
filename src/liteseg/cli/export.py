"""``liteseg export MODEL -o OUT.onnx``: ONNX export (dynamic shapes by default) with a verification run;
``--format executorch|tflite|ncnn``: fixed-shape edge exports (:mod:`liteseg.export.edge`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import LitesegError
from ..export.edge_formats import EDGE_FORMATS
from . import options

_ONNX_ONLY = {"output": "logits", "labels_dtype": "int64", "output_size": "input", "include_preprocess": False,
              "input_layout": "nchw", "opset": None, "fp16": False, "simplify": False, "trt_profile": None,
              "trt_engine": None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX, ExecuTorch, LiteRT (TFLite) or ncnn",
                       description="Export MODEL (any file liteseg.load accepts, or a registered model name with "
                                   "--weights) to ONNX. Default: dynamic batch, height and width, exact for "
                                   "every size. The result is checked in ONNX Runtime against PyTorch. --format "
                                   "executorch|tflite|ncnn writes a fixed-shape model for phones and boards, "
                                   "checked in its own runtime.")
    p.add_argument("model", help="model file/folder/.tgz, or a registered name (see 'liteseg info')")
    p.add_argument("-o", "--output-file", required=True, type=Path,
                   help="the file to write: .onnx, .pte (executorch), .tflite, a folder (ncnn), or with --format "
                        "triton the model repository folder")
    p.add_argument("--format", default="onnx", choices=["onnx", "triton", *EDGE_FORMATS],
                   help="onnx (default); triton: a Triton model repository (Python backend + ONNX Runtime/TensorRT "
                        "variant, see docs/serving.md); executorch (.pte, XNNPACK), tflite (LiteRT) or ncnn (folder: "
                        ".param, .bin, liteseg.json): the edge formats have a fixed input shape (--input-shape, "
                        "default the model's or 1,3,512,512)")
    p.add_argument("--precision", default="fp32",
                   help="edge formats: fp32 (default); executorch int8 (needs --calib); tflite fp16 "
                        "(weights) or int8 (full integer, needs --calib); ncnn fp16")
    p.add_argument("--calib", help="int8 calibration images: a folder or a list file (first column)")
    p.add_argument("--num-calib", type=options.positive_int, default=32, help="calibration images (default 32)")
    p.add_argument("--weights", help="weights for a registered model name (random init without)")
    p.add_argument("--num-classes", type=options.positive_int,
                   help="class count for a registered model name without weights")
    p.add_argument("--input-shape", type=options.input_shape,
                   help="fix the input, e.g. 1,3,512,512 (-1 keeps a dimension dynamic)")
    p.add_argument("--output", default="logits", choices=["logits", "probs", "labels"], help="graph output")
    p.add_argument("--labels-dtype", default="int64", choices=["int64", "uint8"], help="dtype of --output labels")
    p.add_argument("--output-size", default="input", choices=["input", "stride"],
                   help="'stride': no final resize, N x C x ceil(H/8) x ceil(W/8)")
    p.add_argument("--include-preprocess", action="store_true",
                   help="uint8 RGB input, normalisation (mean/std from the model) inside the graph")
    p.add_argument("--input-layout", default="nchw", choices=["nchw", "nhwc"], help="layout of the uint8 input")
    p.add_argument("--opset", type=options.int_at_least(7),
                   help="ONNX opset (default: newest ONNX Runtime supports; 11 works)")
    p.add_argument("--fp16", action="store_true", help="float16 weights and compute, float32 input/output")
    p.add_argument("--simplify", action="store_true", help="run onnxslim (pip install 'liteseg[simplify]')")
    p.add_argument("--trt-profile", metavar="MIN:OPT:MAX",
                   help="TensorRT shape profile stored in the file, e.g. 1x3x256x256:1x3x512x1024:1x3x1024x2048")
    p.add_argument("--trt-engine", type=Path, help="also build a TensorRT engine here (needs tensorrt + a GPU)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """export's checks before any loading: no overwrite of the output or the TensorRT engine."""
    if not args.force:
        options.check_overwrite(args.output_file, args.trt_engine)


def resolve_source(model: str, weights: str | None, num_classes: int | None) -> Any:
    """A path for ``liteseg.load``, or a model built from a registered name (with optional weights)."""
    from ..models import list_models

    if model in list_models():
        from ..loading import create_model, resolve_model

        return resolve_model(create_model(model, num_classes=num_classes, weights=weights).eval())
    if weights or num_classes:
        raise LitesegError(f"--weights/--num-classes go with a registered model name ({', '.join(list_models())}), "
                           f"not with the file {model}")
    return model


def run_edge(args: argparse.Namespace) -> int:
    from ..export.edge import export_edge
    from ..quantize import list_images

    given = [k for k, default in _ONNX_ONLY.items() if getattr(args, k) != default]
    if given:
        raise LitesegError(f"--format {args.format}: {', '.join('--' + k.replace('_', '-') for k in given)} "
                           f"only apply to ONNX exports")
    if args.calib and args.precision != "int8":
        raise LitesegError("--calib calibrates int8 exports; add --precision int8")
    calibration = list_images(args.calib, args.num_calib) if args.calib else []
    report = export_edge(resolve_source(args.model, args.weights, args.num_classes), args.output_file, args.format,
                         args.precision, input_shape=args.input_shape, calibration=calibration,
                         verify=not args.no_verify, overwrite=args.force)
    print(report.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    from ..export.onnx import export_onnx

    if args.format == "triton":
        from ..serve.triton_repo import write_repository

        source = resolve_source(args.model, args.weights, args.num_classes)
        print("\n".join(write_repository(source, args.output_file, overwrite=args.force)))
        return 0
    if args.format != "onnx":
        return run_edge(args)
    if args.precision != "fp32" or args.calib:
        raise LitesegError("--precision/--calib apply to --format executorch|tflite|ncnn; for ONNX use --fp16, "
                           "or 'liteseg quantize' for int8")
    if args.output_file.suffix.lower() != ".onnx":
        raise LitesegError(f"{args.output_file}: the output file must end in .onnx")
    if args.trt_engine and not args.trt_profile:
        raise LitesegError("--trt-engine needs --trt-profile MIN:OPT:MAX (the input shapes the engine accepts)")
    report = export_onnx(resolve_source(args.model, args.weights, args.num_classes), args.output_file,
                         input_shape=args.input_shape, output=args.output, labels_dtype=args.labels_dtype,
                         output_size=args.output_size, include_preprocess=args.include_preprocess,
                         input_layout=args.input_layout, opset=args.opset, fp16=args.fp16, simplify=args.simplify,
                         trt_profile=args.trt_profile, verify=not args.no_verify, overwrite=args.force)
    print(report.summary())
    if args.trt_engine:
        from ..export.tensorrt import build_engine

        print(f"wrote {build_engine(args.output_file, args.trt_engine, fp16=args.fp16, overwrite=args.force)}")
    return 0
