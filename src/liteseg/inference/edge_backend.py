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
from .onnx_graph import OnnxGraphBackend

# backend name -> edge format (liteseg.export.edge.FORMATS)
EDGE_BACKENDS = {"executorch": "executorch", "litert": "tflite", "ncnn": "ncnn"}


class EdgeBackend(OnnxGraphBackend):
    """A runner from :mod:`liteseg.export.executorch`, :mod:`~liteseg.export.litert` or :mod:`~liteseg.export.ncnn`."""

    def __init__(self, name: str, runner: Any, meta: ModelMeta | None = None) -> None:
        super().__init__(meta or runner.meta, runner.info, runner.source)
        self.name = name
        self.runner = runner
        self.precision = runner.edge.get("precision", "")

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.runner(x)


def edge_factory(name: str, source: Any, meta: ModelMeta | None = None, threads: int | None = None) -> Backend:
    """Edge backend ``name`` over the export file ``source`` (the backends' ``factory`` binds ``name``)."""
    if not isinstance(source, (str, os.PathLike)):
        raise LitesegError(f"backend {name!r} runs a model file written by 'liteseg export MODEL --format "
                           f"{EDGE_BACKENDS[name]}', not a {type(source).__name__}")
    return EdgeBackend(name, format_module(EDGE_BACKENDS[name]).open_runner(source, threads), meta)

