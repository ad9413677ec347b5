"""The torch-compile backend (Inductor with freezing) and the torch-opt registry entry."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch._inductor.utils import run_and_get_code
from torch.nn import functional as F

from liteseg.errors import LitesegError
from liteseg.inference.backends import available_backends, create_backend


class Tiny(nn.Module):
    """Conv-BN-ReLU, a stride-2 conv and a resize back: the op kinds of PP-LiteSeg, compiled in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(F.relu(self.bn(self.conv(x))))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def test_registry_names():
    assert {"torch", "torch-opt", "torch-compile"} <= set(available_backends())


def test_torch_opt_runs_a_frozen_graph_with_batchnorm_folded_and_matches_eager():
    model = _tiny()
    optimised = create_backend(model, "torch-opt")
    assert optimised.name == "torch-opt"
    assert isinstance(optimised.model, torch.jit.ScriptModule), "torch-opt must not run the eager module"
    assert not list(optimised.model.parameters()), "frozen: the weights are constants of the graph"
    graph = str(optimised.model.inlined_graph)
    # BatchNorm folded into the convolutions, which run on pre-packed oneDNN weights (optimize_for_inference)
    assert "aten::batch_norm" not in graph and graph.count("prim::mkldnn_convolution") == 2, graph
    x = np.random.RandomState(1).standard_normal((2, 3, 21, 35)).astype(np.float32)  # not the traced size
    np.testing.assert_allclose(optimised(x), create_backend(model, "torch")(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_matches_eager_and_keeps_compile_time_apart(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("LITESEG_HOME", str(tmp_path))
    from liteseg.inference.compiled_backend import inductor_cache_dir

    assert inductor_cache_dir() == tmp_path / "inductor"
    model = _tiny()
    eager = create_backend(model, "torch")
    compiled = create_backend(model, "torch-compile")
    assert compiled.name == "torch-compile"
    x = np.random.RandomState(0).standard_normal((2, 3, 24, 40)).astype(np.float32)
    expected = eager(x)
    out, code = run_and_get_code(compiled, x)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)
    # frozen for real: both convolutions run pre-packed (BatchNorm folded, ReLU fused), none as a plain aten call
    assert "".join(code).count("mkldnn._convolution_pointwise") >= 2 and "extern_kernels.convolution" not in "".join(code)
    assert list(compiled.compile_seconds) == [(2, 3, 24, 40)] and compiled.compile_seconds[(2, 3, 24, 40)] > 0
    np.testing.assert_allclose(compiled(x), expected, atol=1e-5, rtol=1e-5)
    assert len(compiled.compile_seconds) == 1  # the same shape is not compiled again
    assert (tmp_path / "inductor").is_dir()


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(LitesegError, match="torch-compile mode 'fastest'"):
        create_backend(_tiny(), "torch-compile", mode="fastest")
