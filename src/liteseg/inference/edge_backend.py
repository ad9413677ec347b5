"""Backends over edge exports (ExecuTorch ``.pte``, LiteRT ``.tflite``, ncnn folders), run on the CPU.

They read liteseg's metadata from the model (or beside it, for ncnn), accept only the fixed input shape it was
exported for (the Segmenter and evaluator resize to it and map the logits back, as for a fixed-shape ONNX
graph) and return float32 logits.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import LitesegError
from ..export.edge import format_module
from ..meta import ModelMeta
from .backends import Backend
from .capabilities import Capabilities
from .onnx_graph import OnnxGraphBackend


class EdgeBackend(OnnxGraphBackend):
    """A runner from :mod:`liteseg.export.executorch`, :mod:`~liteseg.export.litert` or :mod:`~liteseg.export.ncnn`."""

    capabilities = Capabilities(batching=False)
    edge_format = ""  # liteseg.export.edge.FORMATS

    def __init__(self, runner: Any, meta: ModelMeta | None = None, device: str = "cpu") -> None:
        super().__init__(meta or runner.meta, runner.info, runner.source, device)
        self.runner = runner
        self.precision = runner.edge.get("precision", "")

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.runner(x)


class ExecuTorchBackend(EdgeBackend):
    """ExecuTorch ``.pte`` (XNNPACK)."""

    name, edge_format = "executorch", "executorch"


class LiteRTBackend(EdgeBackend):
    """LiteRT ``.tflite``."""

    name, edge_format = "litert", "tflite"


class NcnnBackend(EdgeBackend):
    """An ncnn folder (``.param`` + ``.bin``)."""

    name, edge_format = "ncnn", "ncnn"


EDGE_CLASSES = {cls.name: cls for cls in (ExecuTorchBackend, LiteRTBackend, NcnnBackend)}


def edge_factory(name: str, source: Any, meta: ModelMeta | None = None, threads: int | None = None,
                 device: str = "cpu") -> Backend:
    """Edge backend ``name`` over the export file ``source`` (each backend module's ``factory`` binds ``name``)."""
    cls = EDGE_CLASSES[name]
    if not isinstance(source, (str, os.PathLike)):
        raise LitesegError(f"backend {name!r} runs a model file written by 'liteseg export MODEL --format "
                           f"{cls.edge_format}', not a {type(source).__name__}")
    return cls(format_module(cls.edge_format).open_runner(source, threads), meta, device)

