"""``torch-compile``: the model compiled by TorchInductor with frozen weights.

Freezing turns the weights into constants, so BatchNorm folds into the convolutions and the convolutions run
with pre-packed oneDNN weights (CPU) or cuDNN (GPU). Compiling takes a while on the first call of every new
input shape; that time is kept apart in :attr:`CompiledTorchBackend.compile_seconds` and never mixed into the
timings. Compiled kernels go to Inductor's on-disk caches under ``$LITESEG_HOME/inductor`` (unless
``TORCHINDUCTOR_CACHE_DIR`` is set), so a second process compiles faster.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import LitesegError
from ..meta import ModelMeta
from .backends import Backend, TorchBackend, resolve_model
from .capabilities import Capabilities

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead")


def inductor_cache_dir() -> Path:
    """Where Inductor keeps compiled kernels: ``$TORCHINDUCTOR_CACHE_DIR`` or ``$LITESEG_HOME/inductor``."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return Path(os.environ.get("LITESEG_HOME", Path.home() / ".cache" / "liteseg")) / "inductor"


class CompiledTorchBackend(TorchBackend):
    """``torch.compile`` (Inductor, ``freezing=True``) of the eval model.

    ``mode``: one of :data:`COMPILE_MODES` (``max-autotune*`` benchmarks kernel choices while compiling);
    ``channels_last``: NHWC weights and activations (default: on for CUDA, off for CPU, where it measured no
    faster); ``cpp_wrapper``: Inductor's C++ wrapper instead of the Python one (less per-call overhead).
    ``half`` runs under autocast like the ``torch`` backend. fp32 outputs match eager to float rounding.
    """

    name = "torch-compile"
    capabilities = Capabilities(devices=("cpu", "cuda"), half=True)

    def __init__(self, model: nn.Module, meta: ModelMeta, device: str | torch.device = "cpu", half: bool = False,
                 threads: int | None = None, mode: str = "default", channels_last: bool | None = None,
                 cpp_wrapper: bool = False) -> None:
        if mode not in COMPILE_MODES:
            raise LitesegError(f"torch-compile mode {mode!r}: choose one of {', '.join(COMPILE_MODES)}")
        super().__init__(model, meta, device=device, half=half, threads=threads)
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        self.model = torch.compile(self.model, mode=None if mode == "default" else mode)
        self.mode, self.cpp_wrapper = mode, cpp_wrapper
        self.compile_seconds: dict[tuple[int, ...], float] = {}

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        t = super()._to_device(x)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape in self.compile_seconds:
            return super().__call__(x)
        start = time.perf_counter()
        try:
            # Inductor reads these when it compiles, i.e. during the first call of a shape; passed as
            # torch.compile(options=...) freezing is silently not applied (torch 2.13): no folding, no prepacking
            with torch._inductor.config.patch(freezing=True, cpp_wrapper=self.cpp_wrapper):
                out = super().__call__(x)
        except Exception as e:  # Inductor raises many internal types (missing compiler, codegen failures)
            raise LitesegError(f"torch.compile failed for input {tuple(x.shape)}: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}; use --backend torch-opt or torch "
                               f"instead (a C++ compiler is needed on CPU)") from None
        self.compile_seconds[tuple(x.shape)] = time.perf_counter() - start
        return out


def factory(source: Any, meta: ModelMeta | None = None, **options: Any) -> Backend:
    """The ``torch-compile`` backend for ``source`` (``options``: :class:`CompiledTorchBackend`'s)."""
    loaded = resolve_model(source, meta)
    return CompiledTorchBackend(loaded.model, loaded.meta, **options)

