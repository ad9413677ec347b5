"""One inference interface over PyTorch, ONNX Runtime and OpenVINO.

A backend takes normalised float32 ``[N, 3, H, W]`` arrays and returns float32 logits ``[N, C, H, W]`` at the
input size. Pre/post-processing lives in the callers (Segmenter, evaluator), driven by ``backend.meta``.
Backends other than ``torch`` live in their own modules, imported when first used: :data:`BACKENDS` names them.
"""
from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import LitesegError, install_hint
from ..loading import resolve_model
from ..meta import ModelMeta
from . import hardware
from .backend_names import BACKENDS
from .capabilities import Capabilities, check_backend_options
from .preprocess import normalize


class Backend(ABC):
    """Runs a segmentation model: ``backend(x)`` maps normalised NCHW float32 to logits NCHW float32.

    Exported graphs may output ``probs`` or ``labels`` instead (``output_kind``) or take uint8 images with
    the normalisation built in (``takes_images``); :meth:`run_images` and :meth:`predict` hide both.
    """

    name: str = ""
    capabilities: ClassVar[Capabilities] = Capabilities()  # what options it takes (checked before it is built)
    output_kind: str = "logits"  # logits | probs: float32 [N, C, H, W]; labels: integer [N, H, W]
    takes_images: bool = False

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    @abstractmethod
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits for a normalised batch."""

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """The only accepted (H, W), or None for any size."""
        return self.meta.fixed_hw

    def run_images(self, images: np.ndarray) -> np.ndarray:
        """The model output at input size for uint8 RGB images ``[N, H, W, 3]`` (or one ``[H, W, 3]``)."""
        return self(normalize(images, self.meta))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class indices ``[N, H, W]`` (int64) for uint8 RGB images: the same pre/post-processing everywhere."""
        out = self.run_images(images)
        return out.astype(np.int64) if self.output_kind == "labels" else out.argmax(axis=1)

    def close(self) -> None:
        """Release resources (sessions, threads)."""


class TorchBackend(Backend):
    """PyTorch eager (optionally fp16 on GPU / bf16 on CPU).

    ``torch-opt`` (:class:`OptimizedTorchBackend`) runs a frozen TorchScript graph instead; ``torch-compile``
    (:mod:`liteseg.inference.compiled_backend`) compiles with TorchInductor.
    """

    name = "torch"
    capabilities = Capabilities(devices=("cpu", "cuda", "mps"), half=True)

    def __init__(self, model: nn.Module, meta: ModelMeta, device: str | torch.device = "cpu",
                 half: bool = False, threads: int | None = None) -> None:
        super().__init__(meta)
        self.device = torch.device(device)
        if threads:
            torch.set_num_threads(threads)
        self.model = model.to(self.device).eval()
        self.dtype = torch.float32
        if half:
            self.dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
            if self.device.type == "cpu" and not hardware.cpu_bf16_fast_path():
                logging.getLogger("liteseg").warning("warning: %s", hardware.SLOW_BF16)

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = self._to_device(x)
        if self.dtype != torch.float32:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.model(t)
        else:
            out = self.model(t)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out.float().cpu().numpy()


class OptimizedTorchBackend(TorchBackend):
    """``torch-opt``: a frozen TorchScript graph with ``optimize_for_inference`` (BatchNorm folded into the
    convolutions, oneDNN layouts on CPU) that still accepts any input size; ``half`` as :class:`TorchBackend`."""

    name = "torch-opt"
    capabilities = Capabilities(devices=("cpu", "cuda"), half=True)

    def __init__(self, model: nn.Module, meta: ModelMeta, device: str | torch.device = "cpu",
                 half: bool = False, threads: int | None = None) -> None:
        super().__init__(model, meta, device=device, half=half, threads=threads)
        self.model = optimize_for_inference(self.model, self.device)


def optimize_for_inference(model: nn.Module, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """A frozen, inference-optimised TorchScript copy of ``model`` (eval mode) that accepts any input size.

    Traced once on a small input; resize targets and pooling come from runtime shapes, so other sizes work
    (the tests check an odd size against eager).
    """
    import copy
    import warnings

    traced_model = copy.deepcopy(model).eval().to(device)
    example = torch.zeros(1, 3, 64, 64, device=device)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(traced_model, example, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def torch_factory(source: Any, meta: ModelMeta | None = None, **options: Any) -> Backend:
    loaded = resolve_model(source, meta)
    return TorchBackend(loaded.model, loaded.meta, **options)


def torch_opt_factory(source: Any, meta: ModelMeta | None = None, **options: Any) -> Backend:
    loaded = resolve_model(source, meta)
    return OptimizedTorchBackend(loaded.model, loaded.meta, **options)




GRAPH_SUFFIXES = (".onnx",)  # model files only graph backends run
EDGE_SUFFIXES = {".pte": "executorch", ".tflite": "litert"}  # edge exports, each run by its one backend


def edge_backend_for(source: Any) -> str | None:
    """The backend of an edge export (``.pte``, ``.tflite``, or a folder with an ncnn ``.param``), else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = os.fspath(source)
    if os.path.isdir(path):
        return "ncnn" if any(name.endswith(".param") for name in os.listdir(path)) else None
    return EDGE_SUFFIXES.get(os.path.splitext(path)[1].lower())


def known_backends() -> list[str]:
    """Every backend name, installed or not."""
    return sorted(BACKENDS)


def backend_for(source: Any) -> str:
    """The default backend for ``source``: ``torch``, except for ONNX files (ONNX Runtime, else OpenVINO) and
    edge exports (:func:`edge_backend_for`)."""
    edge = edge_backend_for(source)
    if edge is not None:
        return edge
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(GRAPH_SUFFIXES):
        for name in ("onnxruntime", "openvino"):
            if BACKENDS.available(name):
                return name
        raise LitesegError(f"{os.fspath(source)}: ONNX models run with ONNX Runtime or OpenVINO, and neither is "
                           f"installed: {install_hint('onnx')}")
    return "torch"


def available_backends() -> list[str]:
    """Backends whose dependencies are installed."""
    return [name for name in BACKENDS if BACKENDS.available(name)]


def create_backend(source: Any, backend: str | None = None, meta: ModelMeta | None = None,
                   **options: Any) -> Backend:
    """A ready backend for ``source`` (path, nn.Module or LoadedModel); ``options`` go to the backend.

    ``backend=None`` picks it from the source (:func:`backend_for`: ``.onnx`` files run in ONNX Runtime).
    ``device`` and ``half`` are checked against what the backend declares (:mod:`liteseg.inference.capabilities`).
    """
    backend = backend or backend_for(source)
    check_backend_options(backend, options.get("device"), bool(options.get("half")))
    return BACKENDS.get(backend)(source, meta=meta, **options)
