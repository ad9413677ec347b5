"""Training checkpoints: atomic writes, keep-last-N, the best model, and ``--resume PATH|auto``.

A checkpoint is one ``torch.save`` dict: ``model`` (so ``liteseg.load`` reads it as a model), ``optimizer``,
``scheduler``, ``iteration`` (iterations completed; it also fixes the data position), ``rng`` (torch, numpy,
Python), ``config`` (the resolved config), ``best`` (best val mIoU so far and its iteration) and, when used,
``ema`` and ``scaler``. Every value is a plain type or tensor, so ``torch.load(weights_only=True)`` reads it.
"""
from __future__ import annotations

import io
import logging
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FormatError, LitesegError
from ..formats.pickle_scan import scan_torch_file
from ..utils.io import atomic_write_bytes

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best_model.pt"
FINAL_NAME = "final_model.pt"  # the weights (EMA when enabled) at train.iters, with the config and metadata
_ITER_FILE = re.compile(r"^iter_(\d+)\.pt$")


class CheckpointError(LitesegError):
    """A checkpoint to resume from is missing, unreadable or from an incompatible run."""


def rng_state() -> dict[str, Any]:
    """The global torch / numpy / Python RNG states as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def checkpoint_path(output_dir: str | Path, iteration: int) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR / f"iter_{iteration:07d}.pt"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(iteration, path) of the periodic checkpoints of a run, oldest first."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _ITER_FILE.match(p.name))]
    return sorted(found)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically (temp file + fsync + rename): a crash never leaves a half-written file."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getbuffer())
    return path


def prune_checkpoints(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` periodic checkpoints (the best model is separate and kept)."""
    removed = []
    for _, path in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; clear errors for missing or damaged files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    hint = "to start from weights only, set model.pretrained instead of --resume"
    try:
        scan_torch_file(path)  # torch's unpickler crashes on deeply nested pickles: refuse them first
    except FormatError as e:
        raise CheckpointError(f"{e}; {hint}") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types, with multi-line messages, for damaged or foreign files
        kind = "a PaddleSeg weight file" if path.suffix == ".pdparams" else f"torch.load: {type(e).__name__}"
        raise CheckpointError(f"{path}: not a liteseg training checkpoint ({kind}); {hint}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a liteseg training checkpoint (a {type(state).__name__}); {hint}")
    missing = [k for k in ("model", "optimizer", "scheduler", "iteration", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a liteseg training checkpoint (missing {', '.join(missing)}); {hint}")
    return state


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """``auto`` -> the newest readable checkpoint of ``output_dir`` (None if there is none); else the path."""
    if resume != "auto":
        return Path(resume)
    for iteration, path in reversed(list_checkpoints(output_dir)):
        try:
            scan_torch_file(path)
            torch.load(path, map_location="cpu", weights_only=True)
            return path
        except Exception as e:  # a damaged newest file: fall back to the previous one
            log.warning("skipping unreadable checkpoint %s (%s: %s)", path, type(e).__name__, e)
    return None
