"""The faster training defaults keep the numbers: foreach SGD vs the per-tensor loop, and the speed script."""
from __future__ import annotations

import pytest

from liteseg.config import load_config
from liteseg.training.trainer import Trainer

from ..conftest import load_benchmark
from .train_helpers import TINY, assert_same_state, final_state, overrides

pytestmark = pytest.mark.usefixtures("one_thread")


def test_foreach_sgd_is_the_default_and_bitwise_identical(camvid_subset, tmp_path):
    states = {}
    for foreach in (False, True):
        out = tmp_path / str(foreach)
        cfg = load_config(TINY, overrides(camvid_subset, out, iters=4, **{"optimizer.foreach": str(foreach).lower()}))
        trainer = Trainer(cfg, progress=False)
        assert trainer.optimizer.param_groups[0]["foreach"] is foreach
        trainer.fit()
        states[foreach] = final_state(out)
    assert load_config(TINY).optimizer.foreach is True
    assert_same_state(states[True], states[False], differing_group_keys=("foreach",))


@pytest.mark.slow
def test_train_speed_script_dry_run(camvid_dir, tmp_path, capsys):
    module = load_benchmark("train_speed")
    out = tmp_path / "speed.json"
    assert module.main(["--dry-run", "--out", str(out), f"data.train=camvid:{camvid_dir}",
                        f"data.val=camvid:{camvid_dir}"]) == 0
    import json

    report = json.loads(out.read_text())
    assert report["old_overrides"] == module.OLD and report["iters"] == 4
    for side in ("old", "new"):
        assert set(report[side]["phases_ms"]) == set(module.PHASES) and report[side]["images_per_s"] > 0
    assert report["max_rel_loss_diff"] < 1e-5
    assert "speed-up new/old" in capsys.readouterr().out


def test_ohem_with_one_log_softmax_matches_the_softmax_formulation():
    import torch
    from torch.nn import functional as F

    from liteseg.training.losses import OhemCrossEntropyLoss

    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(4, 11, 64, 64, generator=g)).requires_grad_()
    label = torch.randint(0, 11, (4, 64, 64), generator=g)
    label[:, :8] = 255
    loss_fn = OhemCrossEntropyLoss(0.7, 5000, 255)
    # the previous formulation: softmax for the selection, cross_entropy for the loss
    with torch.no_grad():
        valid = label != 255
        target = torch.where(valid, label, 0)
        prob = torch.softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
        prob = torch.where(valid, prob, 2.0)
        threshold = max(float(torch.kthvalue(prob.flatten(), 5000).values), 0.7)
        keep = (valid & (prob < threshold)).float()
    expected = (F.cross_entropy(logits, target, reduction="none") * keep).mean() / (keep.mean() + 1e-5)
    (grad_expected,) = torch.autograd.grad(expected, logits)
    assert torch.equal(loss_fn.keep_mask(logits, label), keep)
    loss = loss_fn(logits, label)
    (grad,) = torch.autograd.grad(loss, logits)
    assert abs(float(loss) - float(expected)) < 1e-6 * float(expected)
    assert torch.allclose(grad, grad_expected, atol=1e-9, rtol=1e-5)
