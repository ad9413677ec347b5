"""Entry point: one sub-command per module, each exposing ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import LitesegError

# Each module registers one sub-command; order = order in ``liteseg --help``.
COMMANDS = ["predict", "val", "train", "convert", "export", "quantize", "benchmark", "serve", "info"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liteseg", description="PP-LiteSeg in PyTorch: predict, evaluate, train, export, convert.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except LitesegError as e:
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
