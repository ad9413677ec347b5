"""Run an exported graph in ONNX Runtime next to the PyTorch module it came from and compare outputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .wrappers import ExportWrapper

# Tolerances are relative to the reference's scale (its largest magnitude), so they mean the same on logits of
# 1e-9 (an untrained PaddleSeg init) and of 30. Float32 graphs must match eager PyTorch to 1e-5 of the scale
# (SPEC §4.2's 1e-4 on logits of ~10); fp16 graphs to 2 % of it. Labels may differ only where the top-2 logits are
# closer than the margin (also relative), and at least half of the pixels must be that confident.
FP32_RTOL = 1e-5
FP16_RTOL = 2e-2
FP32_LABEL_MARGIN = 1e-4
FP16_LABEL_MARGIN = 1e-2
MIN_CONFIDENT = 0.5


@dataclass
class SizeCheck:
    shape: tuple[int, ...]
    max_abs_diff: float
    label_mismatches: int
    tolerance: float
    ok: bool

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape))
        if self.label_mismatches >= 0:
            detail = f"{self.label_mismatches} confident labels differ (margin {self.tolerance:.3g})"
        else:
            detail = f"max abs diff {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})"
        return f"{shape}: {detail} {'ok' if self.ok else 'FAILED'}"


@dataclass
class VerifyReport:
    """Per-input-shape comparison of ONNX Runtime against PyTorch."""

    checks: list[SizeCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=float("nan"))

    def summary(self) -> str:
        return "; ".join(c.describe() for c in self.checks)


def example_input(shape: Sequence[int], wrapper: ExportWrapper, seed: int = 0) -> torch.Tensor:
    """Random input of ``shape`` (always given as N,3,H,W) in the layout and dtype the graph expects."""
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    if not wrapper.preprocess:
        return torch.randn(n, c, h, w, generator=gen)
    size = (n, h, w, c) if wrapper.input_layout == "nhwc" else (n, c, h, w)
    return torch.randint(0, 256, size, generator=gen, dtype=torch.uint8)


def verify_session(session, wrapper: ExportWrapper, shapes: Sequence[Sequence[int]], fp16: bool = False
                   ) -> VerifyReport:
    """Compare ``session`` (an ``onnxruntime.InferenceSession``) with ``wrapper`` on random inputs."""
    report = VerifyReport()
    name = session.get_inputs()[0].name
    for i, shape in enumerate(shapes):
        x = example_input(shape, wrapper, seed=i)
        with torch.no_grad():
            logits = wrapper.logits(x)
            ref = wrapper(x).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != ref.shape:
            report.checks.append(SizeCheck(tuple(x.shape), float("inf"), -1, 0.0, False))
            continue
        if wrapper.output == "labels":
            top2 = torch.topk(logits, 2, dim=1).values.numpy()
            scale = float(np.abs(top2).max())
            margin = (FP16_LABEL_MARGIN if fp16 else FP32_LABEL_MARGIN) * scale
            confident = (top2[:, 0] - top2[:, 1]) >= margin
            bad = int(((got.astype(np.int64) != ref.astype(np.int64)) & confident).sum())
            diff = float(np.abs(got.astype(np.int64) - ref.astype(np.int64)).max())
            ok = bad == 0 and scale > 0 and float(confident.mean()) >= MIN_CONFIDENT
            report.checks.append(SizeCheck(tuple(x.shape), diff, bad, margin, ok))
            continue
        diff = float(np.abs(got.astype(np.float32) - ref).max())
        scale = float(np.abs(ref).max())
        tol = (FP16_RTOL if fp16 else FP32_RTOL) * scale
        ok = bool(np.isfinite(diff)) and scale > 0 and diff <= tol
        report.checks.append(SizeCheck(tuple(x.shape), diff, -1, tol, ok))
    return report
