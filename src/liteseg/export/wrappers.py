"""The module that is traced for export: optional baked-in preprocessing, output mode and output size."""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LitesegError
from ..images import normalize
from ..models.sppm import AdaptiveAvgPool

OUTPUTS = ("logits", "probs", "labels")
OUTPUT_SIZES = ("input", "stride")
LABEL_DTYPES = {"int64": torch.int64, "uint8": torch.uint8}
LAYOUTS = ("nchw", "nhwc")


class ExportWrapper(nn.Module):
    """``model`` in eval mode with what a deployment graph needs around it.

    * ``preprocess=(mean, std)``: the input is uint8 RGB (``input_layout`` nchw or nhwc) and the graph
      normalises it as ``(img/255 - mean)/std``; otherwise the input is the normalised float32 NCHW tensor.
    * ``output_size="stride"`` skips the final bilinear resize: ``N x C x ceil(H/8) x ceil(W/8)``.
    * ``output``: ``logits``, ``probs`` (softmax over classes) or ``labels`` (argmax, ``N x H x W``).
    """

    def __init__(self, model: nn.Module, *, output: str = "logits", labels_dtype: str = "int64",
                 output_size: str = "input", preprocess: tuple[Sequence[float], Sequence[float]] | None = None,
                 input_layout: str = "nchw") -> None:
        super().__init__()
        _check_choice("output", output, OUTPUTS)
        _check_choice("output size", output_size, OUTPUT_SIZES)
        _check_choice("labels dtype", labels_dtype, tuple(LABEL_DTYPES))
        _check_choice("input layout", input_layout, LAYOUTS)
        if output_size == "stride" and not (hasattr(model, "forward_features") and hasattr(model, "seg_heads")):
            raise LitesegError(f"output size 'stride' needs a PP-LiteSeg model (forward_features + seg_heads), "
                               f"not a {type(model).__name__}")
        self.model = model.eval()
        self.output = output
        self.labels_dtype = LABEL_DTYPES[labels_dtype]
        self.output_size = output_size
        self.input_layout = input_layout
        self.preprocess = preprocess is not None
        if preprocess is not None:
            mean, std = preprocess
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.eval()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Network input from what the graph receives (identity without baked-in preprocessing)."""
        if not self.preprocess:
            return x
        if self.input_layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        return normalize(x.to(torch.float32), self.mean, self.std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the exported output size."""
        x = self.normalize(x)
        if self.output_size == "stride":
            return self.model.seg_heads[0](self.model.forward_features(x)[0])
        out = self.model(x)
        return out[0] if isinstance(out, (list, tuple)) else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        if self.output == "probs":
            return F.softmax(logits, dim=1)
        if self.output == "labels":
            return logits.argmax(dim=1).to(self.labels_dtype)
        return logits


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LitesegError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def sppm_pools(model: nn.Module) -> list[AdaptiveAvgPool]:
    return [m for m in model.modules() if isinstance(m, AdaptiveAvgPool)]


def choose_pool_modes(model: nn.Module, example: torch.Tensor | None) -> str:
    """Set every SPPM pool's mode for export and return a summary (``native``, ``matmul`` or ``mixed``).

    Dynamic export (``example=None``): the matmul form, exact for any size. Fixed export: native pooling
    (GlobalAveragePool / AveragePool with kernel = stride, as the seed graph) where the pooled map divides
    by the bin count, the matmul form otherwise. ``model`` must be a copy: the modes stay set.
    """
    pools = sppm_pools(model)
    if example is None:
        for pool in pools:
            pool.mode = "matmul"
    else:
        sizes: dict[AdaptiveAvgPool, tuple[int, int]] = {}
        hooks = [p.register_forward_pre_hook(lambda m, a: sizes.__setitem__(m, tuple(a[0].shape[2:])))
                 for p in pools]
        try:
            with torch.no_grad():
                model(example)
        finally:
            for h in hooks:
                h.remove()
        for pool in pools:
            h, w = sizes.get(pool, (0, 0))
            pool.mode = "native" if h and w and h % pool.bins == 0 and w % pool.bins == 0 else "matmul"
    modes = {p.mode for p in pools}
    return modes.pop() if len(modes) == 1 else ("mixed" if modes else "none")


def export_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode on CPU, float32, that export may modify."""
    return copy.deepcopy(model).float().cpu().eval()
