"""The one registry (liteseg.registry) and what a new backend takes: its module plus one line."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from liteseg.errors import LitesegError
from liteseg.registry import Registry

FLOAT64_BACKEND = '''
import copy

import numpy as np
import torch

from liteseg.inference.backends import Backend
from liteseg.loading import resolve_model


class Float64Backend(Backend):
    """The model in float64: a throwaway backend from outside the package."""

    name = "torch-f64"

    def __init__(self, model, meta):
        super().__init__(meta)
        self.model = copy.deepcopy(model).double().eval()

    @torch.inference_mode()
    def __call__(self, x):
        return self.model(torch.from_numpy(np.asarray(x, np.float64))).float().numpy()


def factory(source, meta=None, **options):
    loaded = resolve_model(source, meta)
    return Float64Backend(loaded.model, loaded.meta)
'''


def test_lazy_entries_aliases_suggestions_and_install_hints():
    reg: Registry = Registry("thing")
    reg.add("dumps", "json:dumps", aliases=("to_json",), note="lazy")
    reg.add("module", "json")
    reg.add("absent", "liteseg_absent_pkg.mod:f", package="liteseg_absent_pkg", extra="onnx")
    reg.add("broken", "liteseg_absent_pkg.mod:f", package="some_other_pkg")
    assert reg.get("dumps") is json.dumps and reg.get("to_json") is json.dumps and reg.get("module") is json
    assert reg.names() == ["dumps", "module", "absent", "broken"] and reg.names("d*") == ["dumps"]
    assert reg.entry("to_json").info == {"note": "lazy"} and "to_json" in reg and "to_jsn" not in reg
    with pytest.raises(LitesegError, match=r"unknown thing 'dumsp'; did you mean 'dumps'\?"):
        reg.get("dumsp")
    with pytest.raises(LitesegError, match=r"unknown thing 'zzz'; choose one of dumps, module, absent, broken, to_json"):
        reg.get("zzz")
    with pytest.raises(LitesegError, match=r"'absent' needs .* \(liteseg_absent_pkg\).*pip install 'liteseg\[onnx\]'"):
        reg.get("absent")
    assert not reg.available("absent") and reg.available("dumps")
    with pytest.raises(ImportError):  # a missing package that is not the entry's own: a bug, not "unavailable"
        reg.available("broken")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("to_json", len)


def test_a_new_backend_is_its_module_plus_one_line(tmp_path, monkeypatch, fixture_model):
    from liteseg.cli.options import resolve_backend
    from liteseg.inference import backends

    (tmp_path / "liteseg_f64_backend.py").write_text(FLOAT64_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backends.BACKENDS, "_entries", dict(backends.BACKENDS._entries))  # undone after the test

    backends.BACKENDS.add("torch-f64", "liteseg_f64_backend:factory")  # the one line

    assert "torch-f64" in backends.available_backends() and resolve_backend(None, "torch-f64") == "torch-f64"
    model = fixture_model  # PaddleSeg's export of T with random weights (the backend works on a copy)
    images = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    labels = backends.create_backend(model, "torch-f64").predict(images)
    with torch.no_grad():  # the reference: the float32 model's own argmax of each image
        x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
        expected = model(x).argmax(1).numpy()
    assert labels.shape == (1, 64, 96) and (labels == expected).mean() > 0.999
    assert len(np.unique(expected)) > 1  # randomised weights: not one class everywhere
    sys.modules.pop("liteseg_f64_backend", None)
