"""TorchBackend(compile=True): torch.compile'd model, same outputs as eager at any input size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from liteseg.inference.backends import TorchBackend, create_backend
from liteseg.errors import LitesegError
from liteseg.meta import ModelMeta

from ..conftest import require_executable

META = ModelMeta(arch="tiny", num_classes=4)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()


def test_compile_wraps_the_model_with_dynamic_shapes(monkeypatch):
    calls = []

    def fake_compile(model, **kwargs):
        calls.append(kwargs)
        return lambda x: model(x) + 1.0  # visible in the output: the backend must call the compiled module

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = _tiny()
    backend = TorchBackend(model, META, compile=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 9, 11)).astype(np.float32)
    assert calls == [{"dynamic": True}]
    np.testing.assert_allclose(backend(x), TorchBackend(model, META)(x) + 1.0, rtol=1e-6, atol=1e-6)
    with pytest.raises(LitesegError, match="either optimize=True"):
        TorchBackend(model, META, compile=True, optimize=True)


@pytest.mark.slow
def test_compiled_backend_matches_eager_at_two_sizes():
    require_executable("gcc")  # inductor's C++ code generation
    model = _tiny()
    compiled = create_backend(model, "torch", meta=META, compile=True)
    eager = create_backend(model, "torch", meta=META)
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 16, 24), (2, 3, 21, 13)]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(compiled(x), eager(x), rtol=1e-4, atol=1e-5)
