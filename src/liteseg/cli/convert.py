"""``liteseg convert SRC -o OUT``: any loadable model -> liteseg ``.safetensors`` (or another registered writer)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from ..errors import LitesegError
from ..formats.native import save_native
from ..loading import LoadedModel, load

# output suffix -> writer(loaded, out_path, args) returning what to print (it starts with "wrote OUT");
# other packages add theirs (e.g. ".onnx").
WRITERS: dict[str, Callable[[LoadedModel, Path, argparse.Namespace], str]] = {}


def _write_safetensors(loaded: LoadedModel, out: Path, args: argparse.Namespace) -> str:
    meta = loaded.meta.to_dict()
    save_native(out, loaded.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta},
                half=args.half, overwrite=args.force)
    return f"wrote {out}"


WRITERS[".safetensors"] = _write_safetensors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a Paddle/liteseg model to another format",
                       description="Convert SRC (.pdparams, inference-model folder, .pdmodel, .tgz, .safetensors, "
                                   ".pt) to the format given by OUT's extension.")
    p.add_argument("source", help="model to read")
    p.add_argument("-o", "--output", required=True, type=Path, help="output file; its extension picks the format")
    p.add_argument("--half", action="store_true", help="store float16 weights (safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    suffix = args.output.suffix.lower()
    if suffix not in WRITERS:
        _load_optional_writers()
    if suffix not in WRITERS:
        raise LitesegError(f"{args.output}: unknown output format {suffix!r}; use one of {sorted(WRITERS)}")
    if args.output.exists() and not args.force:
        raise LitesegError(f"{args.output}: already exists; pass --force to overwrite it")
    loaded = load(args.source)
    print(f"loaded {args.source}: {loaded.meta.arch}, {loaded.meta.num_classes} classes "
          f"({loaded.report.summary()}) in {loaded.load_seconds:.2f} s")
    print(WRITERS[suffix](loaded, args.output, args))
    return 0


def _load_optional_writers() -> None:
    """Import the packages that register extra writers (e.g. ONNX), if they are available."""
    import importlib

    for module in ("liteseg.export.onnx",):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
