"""``liteseg convert SRC -o OUT``: any loadable model -> liteseg ``.safetensors`` (or another registered writer)."""
from __future__ import annotations

import argparse
from pathlib import Path

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.convert import OUTPUT_OF_OP, convert, writer_for
    from ..loading import load

    writer_for(args.output)  # an unknown format fails before anything is loaded
    loaded = load(args.source)
    print(f"loaded {args.source}: {loaded.meta.arch}, {loaded.meta.num_classes} classes "
          f"({loaded.report.summary()}) in {loaded.load_seconds:.2f} s")
    print(convert(loaded, args.output, half=args.half, overwrite=args.force, input_shape=args.input_shape,
                  output=args.output_kind))
    if args.output.suffix.lower() == ".onnx" and not args.output_kind and loaded.meta.output_op in OUTPUT_OF_OP:
        print("(--output-kind logits|probs|labels chooses another output)")
    return 0
