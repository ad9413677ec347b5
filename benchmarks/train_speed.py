"""Training speed, old settings vs new defaults, interleaved in ONE run, with a numerics check.

Two Trainers are built from the same config (same seed: same initial weights and the same batches); ``--old``
overrides restore the previous defaults. Their iterations alternate (old, new, old, new, ...), each timed with
its own data loading, phase by phase (data, forward, loss, backward, optimizer), and the losses of every step
are compared: with the same fp32 numerics they agree to float rounding.

    python benchmarks/train_speed.py -c configs/camvid_cpu_default_stage1.yaml --iters 30
    python benchmarks/train_speed.py --dry-run data.train=camvid:PATH  # a tiny run that checks the script (CI)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liteseg.config import load_config
from liteseg.evaluation.benchmark import machine_info
from liteseg.training.trainer import Trainer

# the settings before the training-speed round (issue 19)
OLD = ["optimizer.foreach=false", "train.channels_last=false"]
PHASES = ("data", "forward", "loss", "backward", "optimizer")


class _Timed:
    """One trainer's loop, phase by phase, mirroring Trainer.train_step + _optimizer_step (accum_steps=1)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.loader = trainer, iter(trainer._loader())
        self.times: dict[str, list[float]] = {p: [] for p in PHASES}
        self.losses: list[list[float]] = []
        trainer.model.train()

    def step(self) -> None:
        tr = self.trainer
        marks = [time.perf_counter()]
        images, labels = next(self.loader)
        marks.append(time.perf_counter())
        tr.optimizer.zero_grad(set_to_none=True)
        x = images.contiguous(memory_format=torch.channels_last) if tr.config.train.channels_last else images
        outputs = tr.ddp_model(x)
        marks.append(time.perf_counter())
        total, terms = tr.loss_fn(outputs, labels)
        marks.append(time.perf_counter())
        total.backward()
        marks.append(time.perf_counter())
        self.losses.append([float(v) for v in torch.stack([total.detach(), *(t.detach() for t in terms)])])
        tr._optimizer_step()
        marks.append(time.perf_counter())
        for phase, a, b in zip(PHASES, marks, marks[1:]):
            self.times[phase].append((b - a) * 1000)

    def summary(self, skip: int) -> dict[str, float]:
        return {p: float(np.median(v[skip:])) for p, v in self.times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default="configs/camvid_cpu_default_stage1.yaml")
    p.add_argument("--iters", type=int, default=30, help="iterations per side (the first 3 are not timed)")
    p.add_argument("--dry-run", action="store_true", help="64x64 crops, batch 2, 4 iterations (checks the script)")
    p.add_argument("--out", type=Path, help="write the results as JSON")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for both sides")
    args = p.parse_args(argv)
    skip = 3
    with tempfile.TemporaryDirectory() as tmp:
        common = [f"train.iters={args.iters}", "train.eval_interval=0", "train.plot=false",
                  f"scheduler.warmup_iters={min(5, args.iters)}"]
        if args.dry_run:
            args.iters, skip = 4, 1
            common = ["train.iters=4", "train.eval_interval=0", "train.plot=false", "scheduler.warmup_iters=1",
                      "data.batch_size=2", "augment.crop_size=[64,64]", "loss.min_kept=1000", "data.num_workers=0",
                      "train.num_threads=1"]
        sides = {}
        for name, extra in (("old", OLD), ("new", [])):
            cfg = load_config(args.config, [*common, *args.overrides, *extra, f"train.output_dir={tmp}/{name}"])
            sides[name] = _Timed(Trainer(cfg, progress=False))
        for _ in range(args.iters):
            for side in sides.values():
                side.step()
    load = os.getloadavg()
    batch = sides["new"].trainer.config.data.batch_size
    report: dict[str, Any] = {"machine": machine_info(), "load_avg": load, "iters": args.iters, "batch": batch,
                              "old_overrides": OLD}
    for name, side in sides.items():
        phases = side.summary(skip)
        report[name] = {"phases_ms": phases, "images_per_s": batch * 1000 / sum(phases.values())}
    old_l, new_l = np.array(sides["old"].losses), np.array(sides["new"].losses)
    report["max_rel_loss_diff"] = float((np.abs(old_l - new_l) / np.abs(old_l)).max())
    report["speedup"] = report["new"]["images_per_s"] / report["old"]["images_per_s"]
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; batch {batch}, {args.iters} iterations per side, "
          f"medians of iterations {skip + 1}..{args.iters}")
    for name in sides:
        r = report[name]
        print(f"{name}: {r['images_per_s']:.2f} img/s  " +
              "  ".join(f"{k} {v:.0f} ms" for k, v in r["phases_ms"].items()))
    print(f"speed-up new/old: {report['speedup']:.2f}x; losses agree to {report['max_rel_loss_diff']:.1e} (relative)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
