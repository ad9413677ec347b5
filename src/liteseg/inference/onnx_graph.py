"""Shared part of the backends that run ONNX graphs (ONNX Runtime, OpenVINO).

They read liteseg's metadata from the file (classes, mean/std, fixed shape, output kind, baked-in
preprocessing), check input sizes before the runtime sees them, and bring ``stride`` outputs to input size.
A source that is not an ``.onnx`` file is exported on the fly (dynamic shapes, logits).
"""
from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, LitesegError
from ..export.metadata import ExportInfo, load_onnx, read_metadata
from ..meta import ModelMeta
from .backends import Backend
from .capabilities import Capabilities
from .preprocess import resize_bilinear, resize_labels


def open_graph(source: Any, meta: ModelMeta | None = None) -> tuple[Any, ModelMeta, ExportInfo, str]:
    """``(onnx ModelProto, meta, export info, name for messages)`` for an ``.onnx`` path or any model source."""
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".onnx":
        name = os.fspath(source)
        proto = load_onnx(source)
        stored = read_metadata(proto, name)
        if stored is None:
            found_meta, info = _foreign_meta(proto, name)
        else:
            found_meta, info = stored
        return proto, meta or found_meta, info, name
    from ..export.onnx import build_onnx

    proto, _, info, found_meta, _ = build_onnx(source)
    return proto, meta or found_meta, info, str(source) if isinstance(source, (str, os.PathLike)) else "model"


def _foreign_meta(proto: Any, name: str) -> tuple[ModelMeta, ExportInfo]:
    """Metadata for an ONNX file liteseg did not write (e.g. paddle2onnx's): logits, shapes from the graph."""
    if not proto.graph.input or not proto.graph.output:
        raise FormatError(f"{name}: the ONNX graph has no inputs or no outputs; not a segmentation model")
    inp = proto.graph.input[0].type.tensor_type.shape.dim
    out = proto.graph.output[0].type.tensor_type.shape.dim
    if len(inp) != 4 or len(out) != 4 or out[1].dim_value <= 0:
        raise FormatError(f"{name}: not a segmentation graph liteseg understands (expected input N,3,H,W and "
                          f"logits N,C,H,W with a known C); export it with 'liteseg export'")
    shape = [d.dim_value if d.dim_value > 0 else -1 for d in inp]
    meta = ModelMeta(arch="onnx", num_classes=out[1].dim_value, input_shape=shape, source=name,
                     source_format="onnx", trained=True)
    return meta, ExportInfo(dynamic=any(d < 0 for d in shape), sppm_pool="unknown")


class OnnxGraphBackend(Backend):
    """A backend over an exported graph, on the CPU; subclasses implement :meth:`_infer`."""

    capabilities = Capabilities(image_input=True, output_kinds=("logits", "probs", "labels"))

    def __init__(self, meta: ModelMeta, info: ExportInfo, source: str, device: str = "cpu") -> None:
        super().__init__(meta)
        self.device = device.split(":", 1)[0]  # a device type it declares (create_backend checks)
        self.info = info
        self.source = source
        self.output_kind = info.output
        self.takes_images = info.preprocess

    @abstractmethod
    def _infer(self, x: np.ndarray) -> np.ndarray:
        """Run the graph on its raw input."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.takes_images:
            raise LitesegError(f"{self.source}: this graph takes uint8 images (normalisation is built in); "
                               f"use backend.run_images(images) or backend.predict(images)")
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._check_shape(x.shape[0], x.shape[2], x.shape[3])
        return self._finish(self._infer(x), x.shape[2:])

    def run_images(self, images: np.ndarray) -> np.ndarray:
        if not self.takes_images:
            return super().run_images(images)
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise LitesegError(f"{self.source}: expected uint8 RGB images [N, H, W, 3], got {images.dtype} "
                               f"{list(images.shape)}")
        n, h, w = images.shape[:3]
        self._check_shape(n, h, w)
        x = images if self.info.input_layout == "nhwc" else images.transpose(0, 3, 1, 2)
        return self._finish(self._infer(np.ascontiguousarray(x)), (h, w))

    def _check_shape(self, n: int, h: int, w: int) -> None:
        want = self.meta.input_shape
        fixed_n = want[0] if want[0] > 0 else n
        fixed_hw = self.meta.fixed_hw or (h, w)
        if (n, h, w) != (fixed_n, *fixed_hw):
            shape = "x".join("N" if d < 0 else str(d) for d in want)
            raise LitesegError(f"{self.source}: this model was exported for input {shape} and cannot run "
                               f"{n}x3x{h}x{w}; resize the input to {fixed_hw[0]}x{fixed_hw[1]}"
                               f"{' and batch ' + str(fixed_n) if want[0] > 0 else ''}, or export it with "
                               f"dynamic shapes ('liteseg export MODEL -o OUT.onnx' without --input-shape)")

    def _finish(self, out: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Float outputs as float32; ``stride`` outputs resized to the input size (labels: nearest)."""
        size = (int(size[0]), int(size[1]))
        if self.output_kind == "labels":
            return np.stack([resize_labels(o, size) for o in out])
        return resize_bilinear(out.astype(np.float32, copy=False), size)
