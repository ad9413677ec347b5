"""``liteseg info MODEL``: what a model file holds (architecture, classes, preprocessing, load report)."""
from __future__ import annotations

import argparse
import json

from ..loading import load
from ..models.registry import list_models


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a model file, or list the registered models",
                       description="Describe a model file; without MODEL, list the registered architectures.")
    p.add_argument("model", nargs="?", help="any file liteseg.load accepts")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.model:
        print("\n".join(list_models()))
        return 0
    loaded = load(args.model)
    meta = loaded.meta
    if args.json:
        print(json.dumps(meta.to_dict(), indent=2))
        return 0
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"model:       {meta.arch} ({params:,} parameters incl. aux heads)")
    print(f"source:      {meta.source} [{meta.source_format}], loaded in {loaded.load_seconds:.2f} s")
    print(f"weights:     {loaded.report.summary()}")
    print(f"classes:     {meta.num_classes}: {', '.join(meta.class_names)}")
    print(f"input:       {meta.input_shape}, mean {meta.mean}, std {meta.std}")
    print(f"output op:   {meta.output_op}")
    print(f"config:      {json.dumps(meta.config)}")
    return 0
