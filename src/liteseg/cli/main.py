"""Entry point: one sub-command per module, each exposing ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import LitesegError
from ..utils.io import remove_temps_on_sigterm
from .options import OneLineParser, print_error

# Each module registers one sub-command; order = order in ``liteseg --help``.
COMMANDS = ["predict", "val", "train", "data", "convert", "export", "quantize", "benchmark", "serve", "info"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="liteseg", description="PP-LiteSeg in PyTorch: predict, evaluate, train, export, convert. Without "
                                    "--model, predict / val / serve use the shipped default model: PP-LiteSeg-T for "
                                    "CamVid street scenes (11 classes: sky, building, road, car, pedestrian, ...), "
                                    "480x360; `liteseg info` lists the others.")
    parser.add_argument("--version", action="version", version=f"liteseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed as one line
        return int(e.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    remove_temps_on_sigterm()
    try:
        if hasattr(args, "check"):  # the command's own checks, before any work starts
            args.check(args)
        return int(args.func(args) or 0)
    except (LitesegError, OSError) as e:  # OSError: unwritable output folder, full disk, ...
        if args.verbose:
            raise
        print_error(str(e))
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
