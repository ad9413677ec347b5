"""``Segmenter``: images in, label maps (and optionally probabilities/logits) at the original size out."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError, LitesegError
from ..meta import ModelMeta
from .backends import Backend, create_backend
from .budget import PixelBudget
from .inputs import as_rgb, iter_frames
from . import tta
from .preprocess import (argmax_channels, letterbox, normalize, resize_bilinear, resize_image, resize_labels,
                         upsample_argmax)
from .result_writer import ResultWriter
from .sizing import Imgsz, Plan, model_size, parse_imgsz, plan
from .tiling import slide_labels
from .visualize import colorize, overlay

log = logging.getLogger("liteseg")


@dataclass
class SegResult:
    """One image's segmentation: ``labels`` [H, W] at the original size, plus what was asked for."""

    labels: np.ndarray
    class_names: list[str]
    palette: list[list[int]]
    image: np.ndarray | None = None
    probs: np.ndarray | None = None
    logits: np.ndarray | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)
    uncoloured: list[int] = field(default_factory=list)  # classes the overlay leaves as the image (metadata)

    def colorize(self) -> np.ndarray:
        """RGB colour mask of the labels."""
        return colorize(self.labels, self.palette)

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """The colour mask blended over the input image."""
        if self.image is None:
            raise ValueError("this result keeps no input image; call the Segmenter with keep_image=True")
        return overlay(self.image, self.labels, self.palette, alpha, self.uncoloured)

    def class_shares(self) -> dict[str, float]:
        """Fraction of pixels per class name (classes that do not occur are omitted)."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.class_names))
        total = max(int(counts.sum()), 1)
        return {self.class_names[i]: float(c) / total for i, c in enumerate(counts[: len(self.class_names)]) if c}

    def save(self, directory: str | os.PathLike, stem: str | None = None,
             kinds: Sequence[str] = ("labels", "color", "overlay"), alpha: float = 0.5,
             overwrite: bool = False) -> dict[str, Path]:
        """Write ``<stem>_labels.png`` (class ids), ``_color.png`` (palette PNG: ``.convert("RGB")`` for the colours),
        ``_overlay.jpg``, ``_probs.npy``, ``_label_ids.png`` (Cityscapes labelIds) atomically, as ``liteseg
        predict`` writes them (:class:`~liteseg.inference.result_writer.ResultWriter`)."""
        writer = ResultWriter(directory, kinds, alpha=alpha, overwrite=overwrite, folders=False)
        return writer.write(self, stem or (Path(self.source).stem if self.source else "result"))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


class Segmenter:
    """Segment images with any liteseg model and backend.

    ``model``: a path ``liteseg.load`` accepts (or an ``.onnx`` for ONNX Runtime), an ``nn.Module``, a
    ``LoadedModel`` or a ready ``Backend``; None: the model shipped in the package (as the CLI). Preprocessing
    comes from the model's metadata: normalisation, and the size the model is meant to run at (a fixed input shape,
    a deploy ``Resize``, or its recorded resolution, e.g. 480x360, fitted with the aspect kept; see
    :mod:`liteseg.inference.sizing`); labels come back at the original size. ``imgsz="WxH"`` runs at another
    size, ``imgsz="native"`` at each image's own. ``tile="CROP,STRIDE"`` (e.g. ``"1024x512,768x384"``) predicts
    very large images window by window at that size, averaging the logits.

    >>> seg = Segmenter("model.safetensors")            # doctest: +SKIP
    >>> result = seg("street.jpg"); result.labels.shape  # doctest: +SKIP
    """

    def __init__(self, model: Any = None, backend: str | None = None, device: str | None = None,
                 channel_order: str = "rgb", probs: bool = False, logits: bool = False,
                 keep_image: bool = True, batch_size: int = 1, half: bool = False, threads: int | None = None,
                 tile: str | tuple[tuple[int, int], tuple[int, int]] | None = None,
                 meta: ModelMeta | None = None, imgsz: Imgsz = None, budget: PixelBudget | None = None) -> None:
        if model is None:
            from ..loading.zoo import default_model

            model = default_model()
        if isinstance(model, Backend):
            self.backend = model
        else:
            options = {k: v for k, v in dict(device=device, half=half or None, threads=threads).items() if v}
            self.backend = create_backend(model, backend, meta=meta, **options)
        self.meta = self.backend.meta
        kind = self.backend.output_kind
        if (probs and kind == "labels") or (logits and kind != "logits"):
            raise LitesegError(f"this model outputs {kind}, so {'probabilities' if probs else 'logits'} are not "
                               f"available; export it with --output logits")
        self.tile = tta.parse_slide(tile, "--tile") if isinstance(tile, str) else tile
        if self.tile and (kind != "logits" or self.backend.takes_images):
            raise LitesegError("--tile: tiled (sliding-window) prediction needs a model that outputs logits from float "
                               "input; export it with --output logits and without --include-preprocess")
        self.channel_order = channel_order
        self.want_probs, self.want_logits, self.keep_image = probs, logits, keep_image
        self.batch_size = max(1, int(batch_size))
        self.budget = budget  # batches are split to stay within budget.max_batch_pixels
        fixed_batch = self.meta.input_shape[0] if self.meta.input_shape else -1
        if fixed_batch > 0:
            self.batch_size = min(self.batch_size, fixed_batch)
        self.imgsz = parse_imgsz(imgsz, "--imgsz")
        if self.imgsz is not None and self.meta.fixed_hw:
            h, w = self.meta.fixed_hw
            raise LitesegError(f"--imgsz {imgsz if isinstance(imgsz, str) else 'x'.join(map(str, imgsz))}: this "
                               f"model takes only {w}x{h} inputs (a fixed-shape export); drop --imgsz, or export "
                               f"a dynamic-shape model")
        self.on_window: Callable[[int, int], None] | None = None  # tiled prediction: (windows done, total)
        self.say: Callable[[str], None] | None = None  # where size notes go (default: the "liteseg" logger)
        self._said: set[str] = set()

    def target_hw(self, hw: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """The (H, W) the network runs an image of (H, W) ``hw`` at (None: its own size). Without ``hw``: the
        model's own size (fixed, deploy ``Resize``, ``--imgsz`` or its recorded resolution), or None."""
        if hw is not None:
            found = plan(hw, self.meta, self.imgsz)
            return found.net_hw if found else None
        if self.meta.fixed_hw or self.imgsz is None:
            size = model_size(self.meta)
            return (size[0][1], size[0][0]) if size else None
        return None if self.imgsz == "native" else (self.imgsz[1], self.imgsz[0])

    def _plan(self, image: np.ndarray) -> Plan | None:
        return plan(image.shape[:2], self.meta, self.imgsz)

    def _say(self, found: Plan | None) -> None:
        """What was done to the input size, once per run (per kind of change)."""
        if found is None or not found.how:
            return
        kind = found.how.split(" ", 1)[0]
        if kind not in self._said:
            self._said.add(kind)
            if self.say is not None:
                self.say(found.how)
            else:
                (log.warning if kind == "stretched" else log.info)("%s", found.how)

    def __call__(self, images: Any, channel_order: str | None = None) -> SegResult | list[SegResult]:
        """Segment one image (path, PIL, HWC array) or a list/batch ([N, H, W, C] array) of them."""
        single = not isinstance(images, (list, tuple)) and not (isinstance(images, np.ndarray) and images.ndim == 4)
        items = [images] if single else list(images)
        order = channel_order or self.channel_order
        decoded = []
        for item in items:
            rgb, notes, name = as_rgb(item, order)
            for note in notes:
                log.warning("%s: %s", name, note)
            decoded.append((rgb, notes, name))
        results = self.predict_rgb([d[0] for d in decoded])
        for result, (_, notes, name) in zip(results, decoded):
            result.notes, result.source = list(notes), name if name not in ("array", "image") else ""
        return results[0] if single else results

    def stream(self, source: Any, max_frames: int | None = None, duration: float | None = None
               ) -> Iterator[SegResult]:
        """Yield results as frames arrive (Ultralytics' ``stream=True``): live sources (camera index, rtsp/rtmp/
        http(s) URL, ``-``, ``.streams``) keep only the newest frame, so each result is at most one inference
        behind; images, folders and videos yield every frame. ``result.source`` is ``SOURCE#FRAME``.
        ``max_frames`` / ``duration`` (seconds) stop a live source.
        """
        from .streams import LiveSources, is_live, parse_sources, segment_live

        if not is_live(source):
            for frame in iter_frames(source):
                if frame.error:
                    raise InputError(frame.error)
                result = self.predict_rgb([frame.image])[0]
                result.source, result.notes = frame.source, list(frame.notes)
                yield result
            return
        with LiveSources(parse_sources(source)) as live:
            for _, result, _ in segment_live(self, live.frames(max_frames, duration)):
                yield result

    def predict_rgb(self, images: Sequence[np.ndarray]) -> list[SegResult]:
        """Segment RGB uint8 HWC arrays; same-sized neighbours are batched up to ``batch_size``."""
        results: list[SegResult] = []
        for batch in self.batches(images):
            results.extend(self.finish(batch, self.forward(batch)))
        return results

    def batches(self, items: Iterable[Any], image_of: Callable[[Any], np.ndarray | None] = lambda item: item
                ) -> Iterator[PreparedBatch | Any]:
        """Group a stream of items into prepared batches: same-sized neighbours, up to ``batch_size`` each.

        ``image_of(item)`` gives an item's RGB uint8 image; an item without one (``None``, e.g. an unreadable
        file) is passed through unchanged, in order. Items are consumed lazily, one batch at a time, so this can
        run ahead in a reader thread (see :func:`liteseg.inference.pipeline.prefetch`).
        """
        pending: list[Any] = []
        key = None
        pixels = 0  # in the network input of the pending batch, against ``budget.max_batch_pixels``
        for item in items:
            image = image_of(item)
            found = self._plan(image) if image is not None else None
            new_key = (found.net_hw, found.box) if found else image.shape if image is not None else None
            cost = 0 if image is None else math.prod(found.net_hw if found else image.shape[:2])
            if pending and (image is None or len(pending) >= self.batch_size or new_key != key
                            or (self.budget is not None and not self.budget.fits_batch(pixels, cost))):
                yield self.prepare([image_of(p) for p in pending], pending)
                pending, pixels = [], 0
            if image is None:
                yield item
            else:
                pending.append(item)
                pixels += cost
                key = new_key
        if pending:
            yield self.prepare([image_of(p) for p in pending], pending)

    def prepare(self, images: Sequence[np.ndarray], items: Sequence[Any] | None = None) -> PreparedBatch:
        """The network input of same-sized RGB uint8 images (resized and normalised as the model needs).

        numpy only (no model call), so it may run in another thread than :meth:`forward`.
        """
        images = list(images)
        found = self._plan(images[0])
        self._say(found)
        if found is None:
            sized = images
        elif found.box is not None:
            sized = [letterbox(img, found.net_hw, found.box, self.meta.mean) for img in images]
        else:
            sized = [resize_image(img, found.net_hw) for img in images]
        stacked = sized[0][None] if len(sized) == 1 else np.stack(sized)  # one image: a view, not a copy
        if self.tile:
            inputs = stacked  # windows are cut per image in forward()
        else:
            inputs = stacked if self.backend.takes_images else normalize(stacked, self.meta)
        return PreparedBatch(images, inputs, list(items) if items is not None else list(images),
                             found.box if found else None)

    def forward(self, batch: PreparedBatch) -> np.ndarray:
        """The model output for a prepared batch (logits, probabilities or labels, as the backend gives)."""
        if self.tile:
            return np.stack([self._tiled(img) for img in batch.inputs])
        if self.backend.takes_images:
            return self.backend.run_images(batch.inputs)
        return self.backend(batch.inputs)

    def _tiled(self, image: np.ndarray) -> np.ndarray:
        """One image from overlapping windows (PaddleSeg's slide inference): its labels ``[H, W]``, band by band in
        bounded memory, or its logits ``[C, H, W]`` where probabilities or logits are asked for."""
        if self.want_probs or self.want_logits:
            x = torch.from_numpy(normalize(image, self.meta))
            return tta.slide_inference(lambda t: torch.from_numpy(self.backend(t.numpy())), x, *self.tile)[0].numpy()
        return slide_labels(self.backend, image, lambda win: normalize(win, self.meta), *self.tile,
                            progress=self.on_window)

    def finish(self, batch: PreparedBatch, outputs: np.ndarray) -> list[SegResult]:
        """Results at the original sizes from :meth:`forward`'s outputs (resize back, argmax, probabilities)."""
        kind = "labels" if outputs.ndim == 3 else self.backend.output_kind  # tiled: labels
        dtype = np.uint8 if self.meta.num_classes <= 256 else np.int32
        results = []
        for img, out in zip(batch.images, outputs):
            size = img.shape[:2]
            if batch.box is not None:  # letterboxed: the image's part of the output
                top, left, h, w = batch.box
                out = out[..., top:top + h, left:left + w]
            scores = None
            if kind == "labels":
                labels = resize_labels(out, size) if out.shape != size else out
            elif self.want_probs or self.want_logits:
                scores = resize_bilinear(out[None], size)[0]
                labels = argmax_channels(scores)
            else:  # labels only: resized back in bands, never every class at a camera photo's size
                labels = upsample_argmax(out, size)
            results.append(SegResult(
                labels=labels.astype(dtype, copy=False),
                class_names=list(self.meta.class_names), palette=[list(c) for c in self.meta.palette],
                image=img if self.keep_image else None,
                probs=(scores if kind == "probs" else _softmax(scores)) if self.want_probs else None,
                logits=scores if self.want_logits else None,
                uncoloured=[int(c) for c in self.meta.extra.get("uncoloured_classes", [])]))
        return results


@dataclass
class PreparedBatch:
    """Same-sized images ready for the model: the RGB originals, the network input and the caller's items."""

    images: list[np.ndarray]
    inputs: np.ndarray | None
    items: list[Any]
    box: tuple[int, int, int, int] | None = None  # letterbox: where the images sit in the network input
