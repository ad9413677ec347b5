"""Export verification rejects wrong graphs at every output scale (tolerances relative to the reference)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import liteseg
from liteseg.export.verify import verify_session
from liteseg.export.wrappers import ExportWrapper

from ..conftest import randomize_, require_module

SHAPES = [(1, 3, 64, 96)]


class FakeSession:
    """Answers like an ``onnxruntime.InferenceSession`` with ``wrapper``'s own output passed through ``distort``."""

    def __init__(self, wrapper: ExportWrapper, distort) -> None:
        self.wrapper, self.distort = wrapper, distort

    def get_inputs(self):
        return [SimpleNamespace(name="input")]

    def run(self, _outputs, feeds):
        with torch.no_grad():
            ref = self.wrapper(torch.from_numpy(feeds["input"])).numpy()
        return [self.distort(ref)]


def _wrapper(trained_scale: bool, output: str = "logits") -> ExportWrapper:
    torch.manual_seed(0)
    model = liteseg.create_model("pp_liteseg_t", num_classes=5)
    if trained_scale:
        randomize_(model)
    return ExportWrapper(model, output=output)


@pytest.mark.parametrize("trained_scale", [True, False], ids=["realistic-logits", "paddle-init-1e-9-logits"])
def test_verification_is_relative_to_the_output_scale(trained_scale):
    wrapper = _wrapper(trained_scale)
    with torch.no_grad():
        scale = float(wrapper(torch.randn(1, 3, 64, 96)).abs().max())
    assert (scale > 0.1) == trained_scale  # the PaddleSeg init really gives tiny logits

    def check(distort, fp16=False):
        return verify_session(FakeSession(wrapper, distort), wrapper, SHAPES, fp16=fp16).passed

    assert check(lambda r: r) and check(lambda r: r, fp16=True)
    assert check(lambda r: r * (1 + 1e-6))
    assert not check(lambda r: r * (1 + 1e-3)) and check(lambda r: r * (1 + 1e-3), fp16=True)
    assert not check(lambda r: r * 1.1, fp16=True)
    # the "max abs diff 1.98e-12 (tolerance 0.02) ok" case: an all-zero output is wrong at any scale
    assert not check(np.zeros_like) and not check(np.zeros_like, fp16=True)
    assert not check(lambda r: np.full_like(r, np.nan))


def test_label_verification_needs_confident_pixels_and_agreement():
    wrapper = _wrapper(True, output="labels")

    def check(distort):
        return verify_session(FakeSession(wrapper, distort), wrapper, SHAPES).passed

    assert check(lambda r: r)
    assert not check(lambda r: (r + 1) % 5)
    assert not check(np.zeros_like)


def test_a_real_wrong_export_is_rejected(tmp_path):
    """An ONNX graph of other weights (1 % relative noise on one conv) fails verification against the model."""
    require_module("onnxruntime")
    from liteseg.export.onnx import build_onnx, ort_session

    good = _wrapper(True).model
    bad = _wrapper(True).model
    with torch.no_grad():
        conv = bad.seg_heads[0].conv_out
        conv.weight.mul_(1 + 0.01 * torch.randn_like(conv.weight))
    proto = build_onnx(bad)[0]
    session = ort_session(proto.SerializeToString())
    assert not verify_session(session, ExportWrapper(good), SHAPES).passed
    assert verify_session(ort_session(build_onnx(good)[0].SerializeToString()), ExportWrapper(good), SHAPES).passed
