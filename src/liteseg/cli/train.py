"""``liteseg train --config FILE [section.key=value ...] [--resume PATH|auto]``."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Any

from ..config import load_config, valid_keys

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train PP-LiteSeg (PaddleSeg recipe) from a YAML config",
        description="Train from a YAML config; section.key=value arguments override it (e.g. train.iters=2000 "
                    "data.batch_size=8). The resolved config, checkpoints and logs go to train.output_dir. Run "
                    "under torchrun for multi-GPU / multi-node training. Valid keys: " + ", ".join(valid_keys()))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.iters=1000")
    p.add_argument("-c", "--config", help="YAML config (see configs/); without it the built-in defaults apply")
    p.add_argument("--resume", nargs="+", action=_Resume, metavar=("PATH|auto", "KEY=VALUE"),
                   help="continue from a checkpoint, or 'auto' for the newest one in train.output_dir, with the "
                        "run's saved config (-c only locates the run); KEY=VALUE changes may follow and are logged")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.set_defaults(func=run, check=check, resume=None, resume_overrides=[])


def check(args: argparse.Namespace) -> None:
    """train's checks: ``--resume PATH`` is a trainer checkpoint (now, not after the datasets were read)."""
    if args.resume and args.resume != "auto":
        from ..training.checkpoint import load_checkpoint

        load_checkpoint(args.resume)


class _Resume(argparse.Action):
    """``--resume PATH|auto [KEY=VALUE ...]``: overrides may follow the checkpoint."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if "=" in values[0]:
            parser.error(f"--resume takes the checkpoint (a path or auto) first, then KEY=VALUE changes; got "
                         f"{values[0]!r}")
        namespace.resume, namespace.resume_overrides = values[0], list(values[1:])


def run(args: argparse.Namespace) -> int:
    from ..training.resume import resume_config
    from ..training.trainer import Trainer

    overrides = [*args.overrides, *args.resume_overrides]
    config = (resume_config(args.config, overrides, args.resume) if args.resume
              else load_config(args.config, overrides))
    trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, without saving this iteration
        if trainer.dist.is_main:
            print(f"interrupted; to continue from the last checkpoint in {trainer.output_dir}: {_resume(args)}",
                  file=sys.stderr)
        return 130
    if trainer.dist.is_main:
        best = (f", best val mIoU {result.best_miou:.4f} at iteration {result.best_iter}"
                if result.best_miou is not None else "")
        print(f"{'stopped' if result.interrupted else 'finished'} at iteration {result.iteration} in "
              f"{result.seconds:.0f} s ({result.images_per_s:.1f} images/s){best}; outputs in {result.output_dir}")
        if result.interrupted:
            print(f"to continue: {_resume(args)}")
    return 130 if result.interrupted else 0


def _resume(args: argparse.Namespace) -> str:
    """The command line that continues this run from its newest checkpoint (under torchrun: the same launch)."""
    config = ["-c", args.config] if args.config else []
    return shlex.join(["liteseg", "train", *config, *args.overrides, "--resume", "auto"])
