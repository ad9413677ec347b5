"""Helpers of the training tests: tiny-run overrides and checkpoint comparisons."""
from __future__ import annotations

from pathlib import Path

import torch

from liteseg.palettes import CAMVID_CLASSES
from liteseg.training import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "camvid_tiny.yaml"


def overrides(data: str, out: Path, iters: int = 8, **extra: object) -> list[str]:
    args = {"data.train": data, "data.class_names": "[" + ", ".join(CAMVID_CLASSES) + "]", "train.iters": iters,
            "train.output_dir": str(out), "train.eval_interval": 0, "train.save_interval": 2,
            "train.log_interval": 1, "train.keep_checkpoints": 10, "train.plot": False, "augment.crop_size": "[64,64]",
            "augment.min_scale_factor": 0.25, "augment.max_scale_factor": 0.5, "data.batch_size": 2,
            "loss.min_kept": 512, "scheduler.warmup_iters": 2, "optimizer.lr": 0.01}
    args.update(extra)
    return [f"{k}={v}" for k, v in args.items()]


def final_state(out: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.list_checkpoints(out)[-1][1])


def assert_same_state(a: dict, b: dict, differing_group_keys: tuple[str, ...] = ()) -> None:
    """Two checkpoints hold the same iteration, weights and optimizer state: every parameter's state entry (momentum
    buffers, step counts, ...) in both, none missing on either side, and the same param groups apart from the
    settings named in ``differing_group_keys`` (those the caller changed on purpose)."""
    assert a["iteration"] == b["iteration"]
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys(), "the optimizers hold state for different parameters"
    for index in state_a:
        assert state_a[index].keys() == state_b[index].keys(), f"optimizer state {index}"
        for name, value in state_a[index].items():
            other = state_b[index][name]
            same = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
            assert same, f"optimizer state {index}.{name}"
    groups_a, groups_b = ([{k: v for k, v in group.items() if k not in differing_group_keys}
                           for group in state["optimizer"]["param_groups"]] for state in (a, b))
    assert groups_a == groups_b, "optimizer param_groups"
