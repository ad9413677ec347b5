"""Scale-out features on CPU: 2-process DDP (gloo, torchrun) vs one process, SyncBN, accumulation, AMP, EMA."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from liteseg.config import load_config
from liteseg.training import checkpoint as ckpt
from liteseg.training.trainer import Trainer

from .train_helpers import REPO, TINY, final_state, overrides

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_step(data: str, out, **extra) -> list[str]:
    return overrides(data, out, iters=1, **{"loss.type": "ce", "scheduler.warmup_iters": 0, "train.save_interval": 1,
                                            **extra})


def test_two_processes_equal_one_process_on_the_concatenated_batch(camvid_no_void, tmp_path):
    # Losses are normalised per process (PaddleSeg semantics), so the data has no ignored pixels here: then the
    # mean of the two processes' losses is the loss of the whole batch.
    single = tmp_path / "single"
    Trainer(load_config(TINY, _one_step(camvid_no_void, single, **{"data.batch_size": 4})), progress=False).fit()
    ddp = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "liteseg",
           "train", "-c", str(TINY), "--no-progress", *_one_step(camvid_no_void, ddp, **{"data.batch_size": 2})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FutureWarning" not in proc.stderr, proc.stderr[-3000:]  # SyncBN's all-reduce uses supported API only
    a, b = final_state(single), final_state(ddp)
    assert b["world_size"] == 2 and a["model"].keys() == b["model"].keys()
    stats = [k for k in a["model"] if k.endswith(("running_mean", "running_var"))]
    assert len(stats) > 90
    for key in stats:  # SyncBN: statistics over both processes = statistics of the whole batch
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-4, atol=1e-6, msg=key)
    for (i, sa), (_, sb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        # first SGD step: momentum buffer = averaged gradient + weight decay (float noise ~1e-5 relative)
        ga, gb = sa["momentum_buffer"], sb["momentum_buffer"]
        assert float((ga - gb).norm()) <= 1e-4 * float(ga.norm()) + 1e-6, f"param {i}"
    for key in a["model"]:  # hence the same weights after the step
        wa, wb = a["model"][key].double(), b["model"][key].double()
        assert float((wa - wb).norm()) <= 1e-4 * float(wa.norm()) + 1e-6, key
    # the distributed run resumes too
    cmd[cmd.index("train.iters=1")] = "train.iters=2"
    proc = subprocess.run(cmd + ["--resume", "auto"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stderr and final_state(ddp)["iteration"] == 2


class _NoBN(nn.Module):
    """A batch-independent network (no batch norm): accumulation must reproduce the big-batch gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 11, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.conv(x)
        return [y, y * 0.5, y * 0.25]


def test_accumulation_equals_the_bigger_batch(camvid_no_void, tmp_path):
    grads = []  # (no ignored pixels: each chunk's loss is a plain pixel mean, as in the bigger batch)
    for accum in (1, 2, 4):
        cfg = load_config(TINY, _one_step(camvid_no_void, tmp_path / str(accum), **{
            "data.batch_size": 4 // accum, "train.accum_steps": accum}))
        trainer = Trainer(cfg, progress=False)
        torch.manual_seed(0)
        trainer.model = trainer.ddp_model = _NoBN()
        images, labels = next(iter(trainer._loader()))
        assert images.shape[0] == 4  # one iteration holds batch_size x accum_steps images
        trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
        report = trainer.train_step(images, labels)
        grads.append((trainer.model.conv.weight.grad.clone(), float(report.loss)))
    for grad, loss in grads[1:]:
        torch.testing.assert_close(grad, grads[0][0], rtol=1e-4, atol=1e-6)
        assert loss == pytest.approx(grads[0][1], rel=1e-5)


def test_amp_bf16_channels_last_and_ema(camvid_subset, tmp_path):
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path, iters=2, **{
        "train.amp": "bf16", "train.channels_last": "true", "train.ema_decay": 0.5}))
    result = Trainer(cfg, progress=False).fit()
    state = final_state(tmp_path)
    assert result.iteration == 2 and "ema" in state and "ema_model" in state
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    key = "seg_heads.0.conv_out.weight"
    assert not torch.equal(state["ema_model"][key], state["model"][key])  # EMA lags the raw weights
    resumed = Trainer(load_config(TINY, overrides(camvid_subset, tmp_path, iters=3, **{
        "train.amp": "bf16", "train.channels_last": "true", "train.ema_decay": 0.5})), resume="auto", progress=False)
    assert torch.equal(resumed.ema.module.state_dict()[key], state["ema_model"][key])


def test_fp16_needs_cuda(camvid_subset, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is allowed")
    from liteseg.training.trainer import TrainingError

    with pytest.raises(TrainingError, match="fp16 needs a CUDA device"):
        Trainer(load_config(TINY, overrides(camvid_subset, tmp_path, **{"train.amp": "fp16"})), progress=False)
    assert not ckpt.list_checkpoints(tmp_path)
