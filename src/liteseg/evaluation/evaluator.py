"""``evaluate(model, dataset)``: PaddleSeg-exact metrics over a dataset with any model, format or backend."""
from __future__ import annotations

import os
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.base import SegDataset
from ..data.loader_workers import restore_sigchld
from ..errors import DatasetError, LitesegError
from ..inference import tta
from ..inference.backends import Backend, TorchBackend, create_backend
from ..inference.pipeline import WriteBehind, prefetch
from ..inference.preprocess import argmax_channels, normalize
from ..inference.sizing import model_size
from ..meta import ModelMeta
from .metrics import SegMetrics

READ_AHEAD = WRITE_BEHIND = 2  # images waiting on each side of the model (bounded memory on any dataset size)


@dataclass
class EvalResult:
    """Metrics (``SegMetrics.compute()`` keys), the confusion matrix, speed and the protocol used."""

    metrics: dict[str, Any]
    confusion: np.ndarray
    images_per_second: float
    num_images: int
    seconds: float
    class_names: list[str]
    protocol: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "num_images": self.num_images, "seconds": self.seconds,
                "images_per_second": self.images_per_second, "class_names": self.class_names,
                "protocol": self.protocol, "confusion": self.confusion.tolist(),
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


class _Collate:
    """batch_size=1 collate run in the workers: uint8 RGB -> normalised float32 [1, 3, H, W] (``raw``: the
    uint8 [H, W, 3] image itself), numpy kept."""

    def __init__(self, meta: ModelMeta, raw: bool = False) -> None:
        self.meta = meta
        self.raw = raw

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        (item,) = items
        x = item["image"] if self.raw else normalize(item["image"], self.meta)
        return {"x": x, "label": item["label"], "path": item["path"]}


def _scores_logits(runner: Backend) -> bool:
    """Whether ``runner`` maps normalised arrays to logits (TTA-able); else only ``runner.predict(images)``."""
    return runner.output_kind == "logits" and not runner.takes_images


def _check_protocol(runner: Backend, flip: bool, flip_v: bool, scales: tuple[float, ...],
                    slide: tuple[tta.Size, tta.Size] | None) -> None:
    """Graphs that output probs/labels or take uint8 images are scored single-scale only: refuse TTA up front."""
    if _scores_logits(runner) or not (flip or flip_v or slide or scales != (1.0,)):
        return
    what = (f"outputs {runner.output_kind}" if runner.output_kind != "logits" else
            "takes uint8 images (preprocessing built in)")
    raise LitesegError(f"{getattr(runner, 'source', 'the model')}: this graph {what}, and flip / multi-scale / "
                       f"sliding-window evaluation combines logits of normalised inputs; evaluate it without "
                       f"--flip/--scales/--slide, or export logits without --include-preprocess for TTA")


def _logits_fn(backend: Backend) -> tuple[tta.LogitsFn, torch.device]:
    """A tensor -> tensor forward for ``backend``; torch models stay on their device (no numpy round trip)."""
    if isinstance(backend, TorchBackend):
        autocast = (torch.autocast(backend.device.type, dtype=backend.dtype) if backend.dtype != torch.float32
                    else nullcontext())

        def run_torch(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), autocast:
                out = backend.model(x)
            return (out[0] if isinstance(out, (list, tuple)) else out).float()

        return run_torch, backend.device

    def run_numpy(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(backend(x.cpu().numpy()), dtype=np.float32))

    return run_numpy, torch.device("cpu")


def _argmax(scores: torch.Tensor) -> np.ndarray | torch.Tensor:
    """Class ids of one image's scores ``[1, C, H, W]``; on CPU numpy's running maximum beats torch's argmax."""
    if scores.device.type == "cpu":
        return argmax_channels(scores[0].numpy())
    return scores.argmax(dim=1)[0].cpu()


def _check_fixed_size(meta: ModelMeta, hw: tuple[int, int], scales: Sequence[float],
                      slide: tuple[tta.Size, tta.Size] | None, path: str) -> None:
    fixed = meta.fixed_hw
    if fixed is None or slide is not None:
        return
    for s in scales:
        if tta.scaled_size(hw, s) != tuple(fixed):
            size = tta.scaled_size(hw, s)
            raise LitesegError(f"the model accepts only {fixed[1]}x{fixed[0]} (WxH) inputs but "
                               f"{path} at scale {s} is {size[1]}x{size[0]}; evaluate with --slide "
                               f"{fixed[1]}x{fixed[0]},STRIDE or use a dynamic-shape model")


def evaluate(model_or_backend: Any, dataset: SegDataset, *, flip: bool = False, flip_v: bool = False,
             scales: Sequence[float] = (1.0,), slide: tuple[tta.Size, tta.Size] | str | None = None,
             legacy_aug: bool = False, num_workers: int = 0, progress: bool = True, backend: str | None = None,
             skip_bad: bool = False, exclude_absent: bool = False, **backend_options: Any) -> EvalResult:
    """Evaluate a model on a labelled dataset with PaddleSeg's metrics and inference protocols.

    ``model_or_backend``: an nn.Module (used on its device; its train/eval mode is restored afterwards), a
    LoadedModel, a Backend, or a model path opened with ``backend`` (``torch``/``onnxruntime``/``openvino``; None:
    from the file, ONNX Runtime for ``.onnx``; ``backend_options`` such as ``device`` go to it). Graphs that output
    probs/labels or take uint8 images are scored through ``backend.predict``, single scale (TTA is refused). ``flip``/``flip_v``/``scales``/``slide`` (crop, stride as
    (w, h) pairs or ``"CROP,STRIDE"``) select the protocol, ``legacy_aug`` PaddleSeg <= 2.7's multi-scale/flip.
    Images are read in ``num_workers`` processes (or a thread with 0), ahead of the model, which runs in this
    process one image at a time; argmax and the confusion counts run behind it in a thread.
    """
    if isinstance(slide, str):
        slide = tta.parse_slide(slide)
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise LitesegError(f"scales must be positive numbers, got {scales}")
    module = model_or_backend if isinstance(model_or_backend, nn.Module) else None
    was_training = module.training if module is not None else False
    try:
        if isinstance(model_or_backend, Backend):
            runner = model_or_backend
        elif module is not None:
            param = next(module.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            runner = create_backend(module, "torch", device=backend_options.pop("device", device), **backend_options)
        else:
            runner = create_backend(model_or_backend, backend, **backend_options)
        return _run(runner, dataset, flip=flip, flip_v=flip_v, scales=scales, slide=slide, legacy_aug=legacy_aug,
                    num_workers=num_workers, progress=progress, skip_bad=skip_bad, exclude_absent=exclude_absent)
    finally:
        if module is not None:
            module.train(was_training)


def _resized(logits_fn: tta.LogitsFn, hw: tta.Size) -> tta.LogitsFn:
    """``logits_fn`` run at (H, W) ``hw`` (PaddleSeg's ``Resize`` in the val transforms), logits back at the input's
    size. Only models whose deploy config names a ``Resize`` get it, so every published protocol is unchanged."""
    def run(x: torch.Tensor) -> torch.Tensor:
        return tta.resize(logits_fn(tta.resize(x, hw)), tuple(x.shape[-2:]))

    return run


def check_run(runner: Backend, dataset: SegDataset, *, flip: bool, flip_v: bool, scales: tuple[float, ...],
              slide: tuple[tta.Size, tta.Size] | None, skip_bad: bool) -> None:
    """What is checked before any image is scored: class counts, the protocol, every sample (``validate``)."""
    meta = runner.meta
    if meta.num_classes and meta.num_classes != dataset.num_classes:
        raise LitesegError(f"the model predicts {meta.num_classes} classes but {dataset.name} has "
                           f"{dataset.num_classes} ({', '.join(dataset.class_names[:4])}, ...); evaluate a model "
                           f"trained for this dataset's classes")
    _check_protocol(runner, flip, flip_v, scales, slide)
    dataset.validate(skip_bad=skip_bad)


def _run(runner: Backend, dataset: SegDataset, *, flip: bool, flip_v: bool, scales: tuple[float, ...],
         slide: tuple[tta.Size, tta.Size] | None, legacy_aug: bool, num_workers: int, progress: bool,
         skip_bad: bool, exclude_absent: bool) -> EvalResult:
    meta = runner.meta
    check_run(runner, dataset, flip=flip, flip_v=flip_v, scales=scales, slide=slide, skip_bad=skip_bad)
    logits_fn, device = _logits_fn(runner)
    raw = not _scores_logits(runner)
    found = model_size(meta)
    if found is not None and found[1] == "resize" and not raw:  # a val-time Resize the model's config names
        logits_fn = _resized(logits_fn, (found[0][1], found[0][0]))
    metrics = SegMetrics(dataset.num_classes, dataset.ignore_index, exclude_absent=exclude_absent)
    loader = DataLoader(dataset, batch_size=1, shuffle=False, num_workers=num_workers,
                        collate_fn=_Collate(meta, raw=raw), persistent_workers=False)
    plain = scales == (1.0,) and not (flip or flip_v or slide)

    def predict(batch: dict[str, Any]) -> dict[str, Any]:
        if raw:  # probs / labels output or baked-in preprocessing: the backend's own prediction
            _check_fixed_size(meta, batch["x"].shape[:2], scales, slide, batch["path"])
            return {"pred": torch.from_numpy(runner.predict(batch["x"][None])[0])}
        x = torch.from_numpy(batch["x"]).to(device)
        _check_fixed_size(meta, tuple(x.shape[-2:]), scales, slide, batch["path"])
        if plain:  # what aug_inference computes for this protocol, without its no-op steps
            scores = logits_fn(x)
        else:
            scores = tta.aug_inference(logits_fn, x, scales=scales, flip_h=flip, flip_v=flip_v, slide=slide,
                                       legacy=legacy_aug)
        if scores.shape[1] != dataset.num_classes:
            raise LitesegError(f"the model returned {scores.shape[1]} channels but {dataset.name} has "
                               f"{dataset.num_classes} classes")
        return {"scores": scores}

    bar = _progress_bar(len(dataset)) if progress else None
    start = time.perf_counter()
    count = _score_dataset(loader, predict, metrics, bar)
    seconds = time.perf_counter() - start
    protocol = {"scales": list(scales), "flip": flip, "flip_v": flip_v, "legacy_aug": legacy_aug,
                "slide": [list(slide[0]), list(slide[1])] if slide else None, "backend": runner.name,
                "num_workers": num_workers, "exclude_absent": exclude_absent,
                "device": str(device), "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    return EvalResult(metrics.compute(), metrics.confusion.copy(), count / seconds if seconds > 0 else 0.0, count,
                      seconds, list(dataset.class_names), protocol, list(dataset.skipped))


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluating", unit="img", dynamic_ncols=True)


def _score_dataset(loader: DataLoader, predict: Callable[[dict[str, Any]], dict[str, Any]], metrics: SegMetrics,
                   bar: Any) -> int:
    """``predict`` each loaded image here while the loader runs ahead in a thread, the argmax and confusion counts
    behind in another (advancing ``bar``, closed at the end, unless None); how many images were scored."""
    def score(batch: dict[str, Any]) -> None:  # runs in the write-behind thread
        pred = batch["pred"] if "pred" in batch else _argmax(batch["scores"])
        metrics.update(pred, batch["label"])
        if bar is not None:
            bar.update(1)

    count = 0
    with restore_sigchld():
        try:
            with closing(prefetch(iter(loader), READ_AHEAD)) as batches, WriteBehind(WRITE_BEHIND) as scorer:
                for batch in batches:
                    if batch["label"] is None:
                        raise DatasetError(f"{batch['path']}: no label; evaluation needs labelled samples")
                    scorer.submit(score, {**predict(batch), "label": batch["label"]})
                    count += 1
        finally:
            if bar is not None:
                bar.close()
    return count
