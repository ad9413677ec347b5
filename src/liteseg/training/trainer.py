"""The iteration-based training loop of PaddleSeg's recipes, with exact resume and safe stopping.

One iteration = one optimizer step on ``data.batch_size x train.accum_steps`` images per process. Every
``log_interval`` iterations a CSV row (and TensorBoard scalars), every ``eval_interval`` a validation with
best-model tracking, every ``save_interval`` an atomic checkpoint (the newest ``keep_checkpoints`` are kept).
A non-finite loss stops the run before the weights are touched; Ctrl-C finishes the current iteration, saves a
checkpoint and returns. Under ``torchrun`` the model is wrapped in DDP (SyncBatchNorm by default) and only
rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import Config, config_from_dict
from ..data.loader_workers import restore_sigchld
from ..data.sampling import AugmentedDataset, IterationBatchSampler, build_train_transforms, collate
from ..data.transforms import Normalize
from ..utils.io import atomic_write_bytes
from . import checkpoint as ckpt
from .builders import (build_ema, build_loss, build_meta, build_optimizer, build_scheduler, check_outputs,
                       device_type, place_model, resolve_device, wrap_ddp)
from .data_plots import label_chart, sample_sheet
from .distributed import barrier, init_distributed
from .errors import TrainingError
from .starting_points import build_train_model
from .step_report import LossWindow, StepReport
from .train_data import build_datasets, check_training_data, class_count, class_weights
from .train_log import HEAD_LOSS_FIELDS, RunLogs, iou_field, plot_curves

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``M:SS`` under an hour)."""
    total = int(round(max(seconds, 0.0)))
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@dataclass
class TrainResult:
    """How a ``fit()`` ended."""

    iteration: int
    interrupted: bool
    best_miou: float | None
    best_iter: int | None
    output_dir: Path
    seconds: float
    images_per_s: float


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{section}.{key}: {old[section].get(key)!r} -> {value!r}" for section, values in new.items()
            for key, value in values.items() if old.get(section, {}).get(key) != value]


def _ignore_sigint_in_worker(_: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops the workers


class Trainer:
    """Train a PP-LiteSeg model from a :class:`~liteseg.config.Config`.

    ``resume``: a checkpoint path, ``"auto"`` (newest checkpoint in ``train.output_dir``; a fresh start when
    there is none) or None. ``train_set``/``val_set`` override the datasets named in the config.
    """

    def __init__(self, config: Config, *, resume: str | None = None, train_set: Any = None, val_set: Any = None,
                 progress: bool = True) -> None:
        cfg = self.config = config
        self.progress = progress
        self.dist = init_distributed(device_type(cfg.train.device), cfg.train.dist_backend)
        self.device = resolve_device(cfg.train.device, self.dist)
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        self.output_dir = Path(cfg.train.output_dir)
        self.resume_path = self._resume_path(resume)
        self.plot = check_outputs(cfg, self.device, self.dist)
        built = train_set is None
        self.train_set, self.val_set = build_datasets(cfg, train_set, val_set)
        self.data_report = check_training_data(cfg, self.train_set, self.dist) if built else None
        num_classes = class_count(cfg, self.train_set)
        torch.manual_seed(cfg.train.seed)
        model, self.notes, license = build_train_model(cfg.model.name, num_classes, pretrained=cfg.model.pretrained,
                                                       backbone_pretrained=cfg.model.backbone_pretrained)
        self.meta = build_meta(cfg, model, self.train_set, self.val_set, num_classes, license)
        self.model = place_model(model, cfg, self.dist, self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        weights = class_weights(cfg, self.train_set, self.data_report, self.dist, num_classes)
        self.loss_fn = build_loss(cfg, self.train_set.ignore_index, weights)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.train.amp == "fp16" else None
        self.ema = build_ema(self.model, cfg.train.ema_decay)
        self.ddp_model: nn.Module = wrap_ddp(self.model, self.dist, self.device)
        self.start_iter = 0
        self.best_miou: float | None = None
        self.best_iter: int | None = None
        if self.resume_path is not None:
            self._restore(self.resume_path)
        self._stop_requested = False

    # -- setup -------------------------------------------------------------------------------------------------
    def _resume_path(self, resume: str | None) -> Path | None:
        has_run = bool(ckpt.list_checkpoints(self.output_dir)) or (self.output_dir / "config.yaml").exists()
        if resume is None:
            if has_run:
                raise TrainingError(f"{self.output_dir} already holds a training run; pass --resume auto to continue "
                                    f"it, or set train.output_dir to a new folder")
            return None
        path = ckpt.resolve_resume(resume, self.output_dir)
        if path is None:
            if has_run:
                raise TrainingError(f"{self.output_dir}: --resume auto found no readable checkpoint, but the folder "
                                    f"holds a run; choose another train.output_dir or remove the folder")
            log.info("--resume auto: no checkpoint in %s, starting a new run", self.output_dir)
        return path

    def _restore(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        saved = config_from_dict(state["config"], str(path))
        if saved.model.name != self.config.model.name:
            raise ckpt.CheckpointError(f"{path}: checkpoint of a {saved.model.name}, but the config trains "
                                       f"{self.config.model.name}")
        world = state.get("world_size", 1)
        if world != self.dist.world_size:
            log.warning("%s was written by %d processes, this run has %d: the data order changes", path, world,
                        self.dist.world_size)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ckpt.CheckpointError(f"{path}: the weights do not fit the configured model ({e})") from None
        changed = _changed_keys(saved.to_dict(), self.config.to_dict())
        if changed:
            log.warning("resuming with a changed config (the new values apply from here on): %s", ", ".join(changed))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict({"last_epoch": state["scheduler"]["last_epoch"],
                                        "_step_count": state["scheduler"]["_step_count"],
                                        "_last_lr": state["scheduler"]["_last_lr"]})
        for group in self.optimizer.param_groups:  # the config, not the checkpoint, sets the hyper-parameters
            group.update(lr=self.scheduler.get_lr()[0], momentum=self.config.optimizer.momentum,
                         weight_decay=self.config.optimizer.weight_decay, nesterov=self.config.optimizer.nesterov,
                         foreach=self.config.optimizer.foreach)
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.start_iter = int(state["iteration"])
        best = state.get("best") or {}
        self.best_miou, self.best_iter = best.get("miou"), best.get("iter")
        self.notes = [f"resumed from {path} at iteration {self.start_iter}"]

    # -- state -------------------------------------------------------------------------------------------------
    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "iteration": iteration, "rng": ckpt.rng_state(),
                 "config": self.config.to_dict(), "best": {"miou": self.best_miou, "iter": self.best_iter},
                 "world_size": self.dist.world_size, "meta": self.meta.to_dict()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
            state["ema_model"] = self.ema.module.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def save(self, iteration: int) -> Path | None:
        """Write the checkpoint of ``iteration`` (rank 0) and prune old ones; returns its path."""
        path = None
        if self.dist.is_main:
            path = ckpt.save_checkpoint(self.checkpoint_state(iteration), ckpt.checkpoint_path(self.output_dir, iteration))
            ckpt.prune_checkpoints(self.output_dir, self.config.train.keep_checkpoints)
        barrier(self.dist)
        return path

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluation uses: the EMA when enabled, else the raw model."""
        return self.ema.module if self.ema is not None else self.model

    def evaluate(self) -> dict[str, float]:
        from ..evaluation.evaluator import evaluate

        result = evaluate(self.eval_model, self.val_set, scales=(self.config.data.val_scale,), progress=False,
                          meta=self.meta)
        metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
        metrics.update((iou_field(n), float(v)) for n, v in zip(self.meta.class_names, result.metrics["class_iou"]))
        return metrics

    # -- the loop ----------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        cfg = self.config
        data = AugmentedDataset(self.train_set, build_train_transforms(cfg.augment),
                                Normalize(cfg.augment.mean, cfg.augment.std), seed=cfg.train.seed)
        sampler = IterationBatchSampler(len(self.train_set), cfg.data.batch_size * cfg.train.accum_steps,
                                        cfg.train.iters, seed=cfg.train.seed, start_iter=self.start_iter,
                                        world_size=self.dist.world_size, rank=self.dist.rank)
        self.epoch_of = sampler.epoch_of
        workers = cfg.data.num_workers
        return DataLoader(data, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                          pin_memory=self.device.type == "cuda",
                          worker_init_fn=_ignore_sigint_in_worker if workers else None)

    def _autocast(self) -> contextlib.AbstractContextManager:
        amp = self.config.train.amp
        if amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> StepReport:
        """Forward and backward over ``accum_steps`` chunks; the losses (means over the chunks) and whether they
        were all finite. The optimizer does not step here."""
        accum = self.config.train.accum_steps
        sums = torch.zeros(len(self.loss_fn.coefs) + 1, dtype=torch.float64, device=self.device)
        self.optimizer.zero_grad(set_to_none=True)
        for k, (x, y) in enumerate(zip(images.chunk(accum), labels.chunk(accum))):
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if self.config.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            sync = k == accum - 1 or not self.dist.enabled
            with (contextlib.nullcontext() if sync else self.ddp_model.no_sync()):
                with self._autocast():
                    outputs = self.ddp_model(x)
                total, terms = self.loss_fn(outputs, y)
                scaled = total / accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            sums += torch.stack([total.detach(), *(term.detach() for term in terms)]).double() / accum
        losses = sums.cpu()  # one device sync per step
        return StepReport(losses[0], losses[1:], non_finite=0.0 if bool(torch.isfinite(losses).all()) else 1.0)

    def _step(self, images: torch.Tensor, labels: torch.Tensor, iteration: int) -> StepReport:
        """Iteration ``iteration``: forward, backward and (unless a loss on any process is not finite: then
        :class:`TrainingError`) the update; the report summed over the processes, with their stop requests."""
        report = self.train_step(images, labels)
        report.stop_requested = float(self._stop_requested)
        report = report.summed(self.dist)
        if report.non_finite > 0:
            self._diverged(iteration, report.loss / self.dist.world_size)
        self._optimizer_step()
        return report

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    @contextlib.contextmanager
    def _sigint_saves(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            log.warning("\nCtrl-C: finishing this iteration and saving a checkpoint (press again to abort)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self) -> TrainResult:
        """Run from the start (or resumed) iteration to ``train.iters``; see the module docstring."""
        tc, info = self.config.train, self.dist
        if info.is_main:
            self._start_output()
        logs = RunLogs(self.output_dir, self.train_set.class_names,
                       self.start_iter if self.resume_path is not None else None, tc.tensorboard, info.is_main)
        images_per_iter = self.config.data.batch_size * tc.accum_steps * info.world_size
        bar = self._progress_bar()
        start_time = last_time = time.perf_counter()
        window, done, interrupted = LossWindow(), self.start_iter, False
        self.model.train()
        try:
            with self._sigint_saves(), restore_sigchld():
                for t, (images, labels) in enumerate(self._loader(), self.start_iter):
                    lr = self.optimizer.param_groups[0]["lr"]
                    report = self._step(images, labels, t + 1)
                    done = t + 1
                    window.add(report, info.world_size)
                    bar.update(1)
                    if done % tc.log_interval == 0 or done == tc.iters:
                        now = time.perf_counter()
                        speed = images_per_iter * window.steps / max(now - last_time, 1e-9)
                        self._log_train({"iter": done, "epoch": self.epoch_of(t), **window.means(), "lr": lr,
                                         "images_per_s": speed, "elapsed_s": now - start_time}, logs, bar)
                        last_time = now
                    self._evaluate_and_save(done, logs)
                    if report.stop_requested > 0:
                        self._save_on_stop(done)
                        interrupted = True
                        break
        finally:
            bar.close()
            logs.close()
        seconds = time.perf_counter() - start_time
        if info.is_main:
            self._finish_output(done, interrupted)
        speed = images_per_iter * (done - self.start_iter) / max(seconds, 1e-9)
        return TrainResult(done, interrupted, self.best_miou, self.best_iter, self.output_dir, seconds, speed)

    def _start_output(self) -> None:
        """The output folder, the resolved ``config.yaml``, the starting-point notes; a fresh run's data views."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.output_dir / "config.yaml", self.config.to_yaml().encode())
        for note in self.notes:
            log.info("%s", note)
        if self.resume_path is None:
            self._describe_data()

    def _evaluate_and_save(self, done: int, logs: RunLogs) -> None:
        """Validate every ``eval_interval`` and save every ``save_interval`` iterations, and after the last."""
        tc = self.config.train
        if self.val_set is not None and tc.eval_interval and (done % tc.eval_interval == 0 or done == tc.iters):
            self._eval_and_track(done, logs)
        if done % tc.save_interval == 0 or done == tc.iters:
            self.save(done)

    def _save_on_stop(self, done: int) -> None:
        """Ctrl-C on any process: save iteration ``done`` unless it was just saved."""
        if done % self.config.train.save_interval and done != self.config.train.iters:
            self.save(done)
        log.warning("stopped at iteration %d; checkpoint saved, continue with --resume auto", done)

    def _finish_output(self, done: int, interrupted: bool) -> None:
        """Rank 0 after the loop: the final model of a completed run, and the training curves."""
        if not interrupted and done == self.config.train.iters:
            final = {"model": self.eval_model.state_dict(), "iteration": done, "config": self.config.to_dict(),
                     "meta": self.meta.to_dict()}
            log.info("wrote %s", ckpt.save_checkpoint(final, self.output_dir / ckpt.FINAL_NAME))
        if self.plot and not interrupted:
            png = plot_curves(self.output_dir / "train_log.csv", self.output_dir / "eval_log.csv",
                              self.output_dir / "training_curves.png")
            log.info("wrote %s", png)

    def _describe_data(self) -> None:
        """data_check.txt, the class histogram chart and a sheet of the first iteration's augmented samples."""
        if self.data_report is not None:
            atomic_write_bytes(self.output_dir / "data_check.txt", (self.data_report.format() + "\n").encode())
            if self.plot:
                label_chart(self.data_report, self.meta.palette, self.output_dir / "labels.png")
        cfg = self.config
        transforms = build_train_transforms(cfg.augment)
        sampler = IterationBatchSampler(len(self.train_set), cfg.data.batch_size * cfg.train.accum_steps,
                                        cfg.train.iters, seed=cfg.train.seed)
        samples = []
        for index, t, position in next(iter(sampler))[:16]:
            item = self.train_set[index]
            samples.append(transforms(item["image"], item["label"], np.random.default_rng((cfg.train.seed, t,
                                                                                            position))))
        path = sample_sheet(samples, self.meta.palette, self.train_set.ignore_index,
                            self.output_dir / "train_batch0.jpg")
        log.info("wrote %s (augmented samples of iteration 1 with their masks; ignored pixels white)", path)

    def _diverged(self, iteration: int, loss: torch.Tensor) -> None:
        found = ckpt.list_checkpoints(self.output_dir)
        last = f"the last good checkpoint is {found[-1][1]}" if found else "no checkpoint was written yet"
        raise TrainingError(f"the loss became {float(loss)} at iteration {iteration}; training stopped before the "
                            f"update, {last}. Lower optimizer.lr, check the labels (values outside the classes), "
                            f"or resume with --resume auto")

    def _progress_bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(total=self.config.train.iters, initial=self.start_iter, unit="it", dynamic_ncols=True,
                    desc="train", disable=not (self.progress and self.dist.is_main))

    def _log_train(self, row: dict[str, Any], logs: RunLogs, bar: Any) -> None:
        if logs.train is None:
            return
        logs.train.write(row)
        if logs.writer is not None:
            for key in ("loss", *HEAD_LOSS_FIELDS, "lr", "images_per_s"):
                if key in row:
                    logs.writer.add_scalar(f"train/{key}", row[key], row["iter"])
        if bar.disable:
            done = row["iter"] - self.start_iter
            left = self.config.train.iters - row["iter"]
            eta = row["elapsed_s"] / done * left if done > 0 else 0.0  # eval time included: what the user waits
            log.info("iter %d/%d  loss %.4f  lr %.2e  %.1f img/s  ETA %s", row["iter"], self.config.train.iters,
                     row["loss"], row["lr"], row["images_per_s"], format_duration(eta))
        else:
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", img_s=f"{row['images_per_s']:.1f}")

    def _eval_and_track(self, iteration: int, logs: RunLogs) -> None:
        if self.dist.is_main:
            metrics = self.evaluate()
            miou = metrics["miou"]
            if self.best_miou is None or miou > self.best_miou:
                self.best_miou, self.best_iter = miou, iteration
                best = {"model": self.eval_model.state_dict(), "iteration": iteration, "miou": miou,
                        "config": self.config.to_dict(), "meta": self.meta.to_dict()}
                ckpt.save_checkpoint(best, self.output_dir / ckpt.BEST_NAME)
            row = {"iter": iteration, "miou": miou, "acc": metrics.get("acc"), "kappa": metrics.get("kappa"),
                   "best_miou": self.best_miou, "best_iter": self.best_iter,
                   **{k: v for k, v in metrics.items() if k.startswith("iou_")}}
            if logs.eval is not None:
                logs.eval.write(row)
            if logs.writer is not None:
                logs.writer.add_scalar("val/miou", miou, iteration)
            log.info("\niter %d: val mIoU %.4f (best %.4f at %d)\n  IoU per class: %s", iteration, miou,
                     self.best_miou, self.best_iter,
                     ", ".join(f"{n} {metrics[iou_field(n)]:.3f}" for n in self.meta.class_names))
        if self.dist.enabled:
            best = torch.tensor([self.best_miou or -1.0, self.best_iter or -1], dtype=torch.float64)
            torch.distributed.broadcast(best, 0)
            if best[1] >= 0:
                self.best_miou, self.best_iter = float(best[0]), int(best[1])

