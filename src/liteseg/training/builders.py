"""The objects a :class:`~liteseg.training.trainer.Trainer` is made of, each built from the config: the device,
the model's record, the model on its device, optimizer, scheduler, loss, EMA and the DDP wrapper."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import Config
from ..meta import ModelMeta
from ..utils.plots import INSTALL as PLOT_INSTALL
from ..utils.plots import have_matplotlib
from .distributed import DistInfo, convert_sync_batchnorm
from .errors import TrainingError
from . import losses
from .losses import MultiHeadLoss
from .schedulers import WarmupPolyLR
from .train_data import uncoloured_classes, validated_input_size
from .train_log import require_tensorboard

if TYPE_CHECKING:
    from torch.optim.swa_utils import AveragedModel

log = logging.getLogger(__name__)


def device_type(name: str) -> str:
    """``cuda`` or ``cpu``: what ``train.device`` (``auto``: CUDA when available) trains on."""
    return "cuda" if "cuda" in name or (name == "auto" and torch.cuda.is_available()) else "cpu"


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """The device of this process (under torchrun on CUDA: its local rank's GPU), made current."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"train.device={name} but CUDA is not available; use train.device=cpu")
        if info.enabled and device.index is None:
            device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def check_outputs(config: Config, device: torch.device, info: DistInfo) -> bool:
    """Refuse fp16 off CUDA and TensorBoard without its package; whether the curves can be plotted."""
    tc = config.train
    if tc.amp == "fp16" and device.type != "cuda":
        raise TrainingError("train.amp=fp16 needs a CUDA device; use train.amp=bf16 on CPU")
    if tc.tensorboard and info.is_main:
        require_tensorboard()
    if tc.plot and not have_matplotlib():
        log.warning("warning: train.plot: the training curves need matplotlib (%s); the CSV logs are written "
                    "and the curves left out", PLOT_INSTALL)
    return tc.plot and have_matplotlib()


def build_meta(config: Config, model: nn.Module, train_set: Any, val_set: Any, num_classes: int,
               license: Any) -> ModelMeta:
    """The record saved with every checkpoint: classes, palette, normalisation, the config, the input size."""
    return ModelMeta(arch=config.model.name, num_classes=num_classes, config=dict(model.config),
                     class_names=list(train_set.class_names),
                     palette=[[int(v) for v in rgb] for rgb in train_set.palette],
                     mean=list(config.augment.mean), std=list(config.augment.std),
                     ignore_index=train_set.ignore_index, source=str(Path(config.train.output_dir)),
                     source_format="liteseg-train", license=license,
                     extra={"training_config": config.to_dict(),
                            "uncoloured_classes": uncoloured_classes(config, num_classes),
                            **validated_input_size(val_set, config.data.val_scale)})


def place_model(model: nn.Module, config: Config, info: DistInfo, device: torch.device) -> nn.Module:
    """``model`` on ``device`` (SyncBatchNorm under torchrun with ``train.sync_bn``, channels-last if asked)."""
    if info.enabled and config.train.sync_bn:
        model = convert_sync_batchnorm(model, device.type)
    model.to(device)
    if config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.SGD:
    o = config.optimizer
    return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.nesterov, foreach=o.foreach)


def build_scheduler(optimizer: torch.optim.Optimizer, config: Config) -> WarmupPolyLR:
    s = config.scheduler
    return WarmupPolyLR(optimizer, iters=config.train.iters, warmup_iters=s.warmup_iters,
                        warmup_start_lr=s.warmup_start_lr, power=s.power, end_lr=s.end_lr, horizon=s.horizon)


def build_loss(config: Config, ignore_index: int, weights: list[float] | None) -> MultiHeadLoss:
    """``loss.type`` (a :data:`~liteseg.training.losses.LOSSES` entry) on every head, weighted by ``loss.coefs``."""
    return MultiHeadLoss(losses.build_loss(config.loss, ignore_index, weights), config.loss.coefs)


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (None with ``decay`` 0)."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel under torchrun, else itself."""
    if not info.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
