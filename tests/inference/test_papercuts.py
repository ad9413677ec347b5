"""Inference papercuts (issue 25): no numpy warning on decoded images, and a warning for bf16 without hardware."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.inference import backends, hardware
from liteseg.inference.backends import TorchBackend
from liteseg.meta import ModelMeta


def test_fixed_shape_model_on_a_decoded_image_warns_nothing(tmp_path):
    """Decoded images are read-only numpy arrays; resizing them to a fixed input shape made torch warn."""
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=3, input_shape=[1, 3, 32, 32])
    seg = liteseg.Segmenter(TorchBackend(torch.nn.Conv2d(3, 3, 1), meta))  # any model: the resizes are tested
    path = tmp_path / "x.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = seg(path).labels
    assert labels.shape == (20, 30)


@pytest.mark.parametrize("machine,probes,cpuinfo,fast", [
    ("x86_64", {}, "", False),  # AVX2 only: bf16 is emulated
    ("x86_64", {"_is_avx512_bf16_supported": True}, "", True),
    ("AMD64", {"_is_amx_tile_supported": True}, "", True),
    ("aarch64", {}, "fp asimd sve bf16 i8mm", True),
    ("aarch64", {}, "fp asimd", False),
])
def test_bf16_fast_path_follows_the_cpu_capabilities(monkeypatch, tmp_path, machine, probes, cpuinfo, fast):
    monkeypatch.setattr(hardware.platform, "machine", lambda: machine)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda value=probes.get(name, False): value, raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor : 0\nFeatures : {cpuinfo}\n")
    monkeypatch.setattr(hardware, "Path", lambda _: info)
    assert hardware.cpu_bf16_fast_path() is fast


@pytest.mark.parametrize("fast", [False, True])
def test_half_on_a_cpu_without_bf16_hardware_warns_with_the_reason(monkeypatch, caplog, fast):
    monkeypatch.setattr(backends.hardware, "cpu_bf16_fast_path", lambda: fast)
    model = torch.nn.Conv2d(3, 2, 1)
    with caplog.at_level(logging.WARNING, logger="liteseg"):
        TorchBackend(model, ModelMeta(arch="pp_liteseg_t", num_classes=2), half=True)
        TorchBackend(model, ModelMeta(arch="pp_liteseg_t", num_classes=2))  # float32: never a warning
    warned = [r.getMessage() for r in caplog.records if "bfloat16" in r.getMessage()]
    assert len(warned) == (0 if fast else 1)
    assert fast or ("no bfloat16 hardware" in warned[0] and "without --half" in warned[0])
