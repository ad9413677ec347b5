"""ONNX Runtime backend (CPU): ``create_backend("model.onnx", "onnxruntime")``."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (a missing package makes this module unavailable, see backends.BACKENDS)

from ..export.onnx import ort_session
from ..meta import ModelMeta
from .backends import Backend
from .onnx_graph import OnnxGraphBackend, open_graph


class OrtBackend(OnnxGraphBackend):
    """An ONNX Runtime session with full graph optimisation.

    ``threads`` sets intra-op threads; ``spinning=False`` stops idle worker threads from spinning (fairer
    timings when several engines share few cores). ``device``: ``cpu`` (the CPU execution provider).
    """

    name = "onnxruntime"

    def __init__(self, proto: Any, meta: ModelMeta, info: Any, source: str, threads: int | None = None,
                 spinning: bool = True, device: str = "cpu") -> None:
        super().__init__(meta, info, source, device)
        self.session = ort_session(proto, threads=threads, spinning=spinning)
        self.input_name = self.session.get_inputs()[0].name

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


def factory(source: Any, meta: ModelMeta | None = None, **options: Any) -> Backend:
    """The ``onnxruntime`` backend for an ONNX ``source`` (``options``: :class:`OrtBackend`'s)."""
    proto, meta, info, name = open_graph(source, meta)
    return OrtBackend(proto, meta, info, name, **options)

