"""``liteseg convert SRC -o OUT``: any loadable model -> liteseg ``.safetensors`` (or another registered writer)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import LitesegError
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a Paddle/liteseg model to another format",
                       description="Convert SRC (.pdparams, Paddle 2 or Paddle 3 PIR inference-model folder, .pdmodel, "
                                   "inference.json, .tar/.tgz package, .safetensors, .pt) to the format given by "
                                   "OUT's extension (.onnx or .safetensors).")
    p.add_argument("source", help="model to read")
    p.add_argument("-o", "--output", required=True, type=Path, help="output file; its extension picks the format")
    p.add_argument("--half", action="store_true", help="store float16 weights (safetensors; fp16 ONNX)")
    p.add_argument("--input-shape", type=options.input_shape,
                   help="ONNX only: fix the input, e.g. 1,3,512,512 (default: the source's fixed feed shape if it "
                        "has one, else dynamic H x W)")
    p.add_argument("--output-kind", choices=["logits", "probs", "labels"],
                   help="ONNX only: the graph's output (default: the source's; labels for an argmax package)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """convert's checks: a known output format (before anything is loaded), ONNX-only options, no overwrite."""
    from ..export.convert import writer_for

    writer_for(args.output)
    if args.output.suffix.lower() != ".onnx":
        given = [o for o, v in (("--input-shape", args.input_shape), ("--output-kind", args.output_kind)) if v]
        if given:
            raise LitesegError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to .onnx outputs "
                               f"only, not {args.output.name}")
    if not args.force:
        options.check_overwrite(args.output)


def run(args: argparse.Namespace) -> int:
    from ..export.convert import OUTPUT_OF_OP, convert
    from ..loading import load

    loaded = load(args.source)
    print(f"loaded {args.source}: {loaded.meta.arch}, {loaded.meta.num_classes} classes "
          f"({loaded.report.summary()}) in {loaded.load_seconds:.2f} s")
    print(convert(loaded, args.output, half=args.half, overwrite=args.force, input_shape=args.input_shape,
                  output=args.output_kind))
    if args.output.suffix.lower() == ".onnx" and not args.output_kind and loaded.meta.output_op in OUTPUT_OF_OP:
        print("(--output-kind logits|probs|labels chooses another output)")
    return 0
