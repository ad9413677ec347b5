"""Numerical parity with the original PaddleSeg outputs in ../shared/fixtures/pp_liteseg_t."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import liteseg

ATOL = 1e-4


def _argmax_agreement(ours: np.ndarray, ref: np.ndarray, margin: float = 2e-4) -> tuple[int, int]:
    top2 = np.sort(ref, axis=1)[:, -2:]
    confident = (top2[:, 1] - top2[:, 0]) >= margin
    agree = ours.argmax(1) == ref.argmax(1)
    return int((~agree & confident).sum()), int(confident.sum())


@pytest.fixture(scope="module", params=["pdparams", "inference", "inference_without_info"])
def parity_model(request, fixture_dir, tmp_path_factory):
    if request.param == "pdparams":
        source = fixture_dir / "weights.pdparams"
    elif request.param == "inference":
        source = fixture_dir / "inference"
    else:
        source = tmp_path_factory.mktemp("noinfo")
        for name in ("model.pdmodel", "model.pdiparams", "deploy.yaml"):
            (source / name).write_bytes((fixture_dir / "inference" / name).read_bytes())
    return liteseg.load(source).model


def test_logits_256x512(parity_model, fixture_inputs, fixture_logits):
    with torch.no_grad():
        ours = parity_model(torch.from_numpy(fixture_inputs["256x512"])).numpy()
    ref = fixture_logits["256x512"]
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= ATOL
    wrong, checked = _argmax_agreement(ours, ref)
    assert wrong == 0 and checked > 0.99 * ref.shape[2] * ref.shape[3]


def test_logits_512x1024(parity_model, fixture_inputs, fixture_logits):
    with torch.no_grad():
        ours = parity_model(torch.from_numpy(fixture_inputs["512x1024"])).numpy()[:, :, ::8, ::8]
    ref = fixture_logits["512x1024_stride8"]
    assert np.abs(ours - ref).max() <= ATOL
    assert _argmax_agreement(ours, ref)[0] == 0


def test_intermediates_layer_by_layer(fixture_model, fixture_dir, fixture_inputs):
    model = fixture_model
    captured = {}
    hooks = [model.backbone.register_forward_hook(
        lambda m, i, o: captured.update({f"backbone_out.{k}": v for k, v in enumerate(o)})),
        model.ppseg_head.cm.register_forward_hook(lambda m, i, o: captured.update(sppm_out=o)),
        model.ppseg_head.register_forward_hook(
            lambda m, i, o: captured.update({f"head_out.{k}": v for k, v in enumerate(o)})),
        model.seg_heads[0].register_forward_hook(lambda m, i, o: captured.update(seghead0_out=o))]
    hooks += [arm.register_forward_hook(lambda m, i, o, k=k: captured.update({f"uafm{k}_out": o}))
              for k, arm in enumerate(model.ppseg_head.arm_list)]
    try:
        with torch.no_grad():
            model(torch.from_numpy(fixture_inputs["256x512"]))
    finally:
        for h in hooks:
            h.remove()
    with np.load(fixture_dir / "intermediates_256x512.npz") as ref:
        assert set(ref.files) <= set(captured)
        for key in ref.files:
            ours = captured[key].numpy()
            assert ours.shape == ref[key].shape, key
            assert np.abs(ours - ref[key]).max() <= ATOL, key


def test_fixture_scale_values_are_used(fixture_model):
    scales = [float(a._scale) for a in fixture_model.ppseg_head.arm_list]
    np.testing.assert_allclose(scales, [0.89855117, 1.1955241, 1.1679844], rtol=1e-6)
