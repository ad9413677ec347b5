"""Checkpoint files: atomic writes, pruning, resume discovery, clear errors; RNG state round trip."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from liteseg.training import checkpoint as ckpt

from .train_helpers import assert_same_state


def _state(iteration: int) -> dict:
    return {"model": {"w": torch.full((2,), float(iteration))}, "optimizer": {}, "scheduler": {},
            "iteration": iteration, "config": {}, "rng": ckpt.rng_state()}


def test_save_is_atomic_and_prunes(tmp_path):
    for i in (2, 4, 6, 8):
        ckpt.save_checkpoint(_state(i), ckpt.checkpoint_path(tmp_path, i))
        ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [i for i, _ in ckpt.list_checkpoints(tmp_path)] == [6, 8]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, 8))["iteration"] == 8


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, 2)
    ckpt.save_checkpoint(_state(2), path)
    with pytest.raises(Exception):
        ckpt.save_checkpoint({"bad": lambda: None}, path)  # lambdas cannot be pickled
    assert ckpt.load_checkpoint(path)["iteration"] == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_resume_auto_skips_damaged_newest(tmp_path):
    assert ckpt.resolve_resume("auto", tmp_path) is None
    ckpt.save_checkpoint(_state(2), ckpt.checkpoint_path(tmp_path, 2))
    ckpt.checkpoint_path(tmp_path, 4).write_bytes(b"truncated")
    assert ckpt.resolve_resume("auto", tmp_path) == ckpt.checkpoint_path(tmp_path, 2)
    assert ckpt.resolve_resume("some/file.pt", tmp_path).name == "file.pt"


def test_clear_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no such checkpoint"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ckpt.CheckpointError, match=r"not a liteseg training checkpoint \(torch.load: \w+\)"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a liteseg training checkpoint.*model.pretrained"):
        ckpt.load_checkpoint(tmp_path / "weights.pt")


def test_rng_state_round_trip():
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_resume_comparison_sees_every_optimizer_entry():
    """The resume tests' ``assert_same_state``: a parameter's state missing on one side, or any entry (not only
    the momentum buffer) differing, is a difference; two real SGD/AdamW states after one step are equal."""
    def stepped(kind: type) -> dict:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        optimizer = kind(model.parameters(), lr=0.1, **({"momentum": 0.9} if kind is torch.optim.SGD else {}))
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        return {"iteration": 1, "model": model.state_dict(), "optimizer": optimizer.state_dict()}

    assert_same_state(stepped(torch.optim.AdamW), stepped(torch.optim.AdamW))
    shorter = stepped(torch.optim.SGD)
    del shorter["optimizer"]["state"][1]
    with pytest.raises(AssertionError, match="different parameters"):
        assert_same_state(stepped(torch.optim.SGD), shorter)
    later = stepped(torch.optim.AdamW)
    later["optimizer"]["state"][0]["step"] += 1
    with pytest.raises(AssertionError, match=r"optimizer state 0\.step"):
        assert_same_state(stepped(torch.optim.AdamW), later)
    other_lr = stepped(torch.optim.SGD)
    other_lr["optimizer"]["param_groups"][0]["lr"] = 0.2
    with pytest.raises(AssertionError, match="param_groups"):
        assert_same_state(stepped(torch.optim.SGD), other_lr)
