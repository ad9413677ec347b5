"""OHEM / CE losses against values computed by hand from SPEC 6.2."""
from __future__ import annotations

import math

import pytest
import torch

from liteseg.training.losses import CrossEntropyLoss, MultiHeadLoss, OhemCrossEntropyLoss

# Ground-truth probabilities of four pixels (class 0 is the label); the fourth pixel is ignored.
P = [0.9, 0.6, 0.3, 0.5]


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.tensor(P, dtype=torch.float64)
    logits = torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, 4).float().requires_grad_(True)
    label = torch.tensor([[[0, 0, 0, 255]]])
    return logits, label


def _expected(kept: list[float]) -> float:
    ce = sum(-math.log(p) for p in kept)
    return (ce / 4) / (len(kept) / 4 + 1e-5)


@pytest.mark.parametrize("thresh, min_kept, kept", [
    (0.7, 1, [0.6, 0.3]),        # threshold = max(p_sorted[0] = 0.3, 0.7) = 0.7
    (0.7, 2, [0.6, 0.3]),        # max(0.6, 0.7) = 0.7
    (0.5, 2, [0.3]),             # max(0.6, 0.5) = 0.6, and p < 0.6 is strict: the 0.6 pixel is not kept
    (0.5, 1, [0.3]),             # max(0.3, 0.5) = 0.5
    (0.7, 3, [0.9, 0.6, 0.3]),   # min_kept >= n_valid (3): every valid pixel
    (0.2, 0, [0.9, 0.6, 0.3]),   # PaddleSeg: min_kept <= 0 skips the selection, plain cross-entropy
    (0.2, -5, [0.9, 0.6, 0.3]),  # negative too (PaddleSeg does not validate it)
    (0.2, -5, [0.9, 0.6, 0.3]),
])
def test_ohem_matches_hand_computed(thresh, min_kept, kept):
    logits, label = _case()
    loss = OhemCrossEntropyLoss(thresh, min_kept, 255)(logits, label)
    expected = _expected(kept) if kept else 0.0
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("confident", [False, True])  # many hard pixels (threshold = thresh) / few (k-th value)
def test_ohem_keep_mask_matches_full_sort_definition(confident):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 16, 16) * (6.0 if confident else 0.5)
    label = logits.argmax(1) if confident else torch.randint(0, 5, (2, 16, 16))
    label[0, :4] = 255
    ohem = OhemCrossEntropyLoss(0.7, 100, 255)
    prob = torch.softmax(logits, 1).gather(1, label.clamp(max=4).unsqueeze(1)).squeeze(1)
    prob[label == 255] = 2.0
    threshold = max(float(torch.sort(prob.flatten()).values[99]), 0.7)
    assert (threshold > 0.7) == confident
    expected = ((label != 255) & (prob < threshold)).float()
    assert torch.equal(ohem.keep_mask(logits, label), expected)
    assert int(expected.sum()) >= 99  # min_kept - 1: pixels equal to the k-th value are not kept (strict <)


def test_ohem_gradient_only_on_kept_pixels():
    logits, label = _case()
    OhemCrossEntropyLoss(0.7, 1, 255)(logits, label).backward()
    grad = logits.grad.abs().sum(dim=1).flatten()
    assert grad[0] == 0 and grad[3] == 0  # easy pixel (0.9 > 0.7) and ignored pixel
    assert grad[1] > 0 and grad[2] > 0


def test_ohem_all_ignored_gives_zero():
    logits = torch.randn(1, 3, 2, 2)
    label = torch.full((1, 2, 2), 255)
    assert float(OhemCrossEntropyLoss()(logits, label)) == 0.0


def test_cross_entropy_ignores_void():
    logits, label = _case()
    assert float(CrossEntropyLoss(255)(logits, label).detach()) == pytest.approx(_expected([0.9, 0.6, 0.3]), rel=1e-5)


def test_multi_head_weights_and_count():
    logits, label = _case()
    loss = MultiHeadLoss(CrossEntropyLoss(255), [1.0, 0.5, 0.25])
    total, terms = loss([logits, logits, logits], label)
    assert float(total.detach()) == pytest.approx(1.75 * float(terms[0].detach()), rel=1e-6)
    with pytest.raises(ValueError, match="3 loss coefficients"):
        loss([logits, logits], label)


def test_ohem_rejects_bad_arguments():
    with pytest.raises(ValueError, match="thresh"):
        OhemCrossEntropyLoss(thresh=1.5)


def test_class_weights_give_paddleseg_weighted_mean():
    """CE(weight=w) = sum(w_y * CE) / sum(w_y) over valid pixels (+ eps), as PaddleSeg's CrossEntropyLoss."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    label = torch.randint(0, 3, (2, 4, 5))
    label[0, 0] = 255
    w = [0.5, 2.0, 4.0]
    valid = label != 255
    ce = torch.nn.functional.cross_entropy(logits, label.clamp(max=2), reduction="none")[valid]
    wy = torch.tensor(w)[label.clamp(max=2)][valid]
    n = label.numel()
    expected = float((ce * wy).sum() / n / ((wy.sum() / n) + 1e-5))
    assert float(CrossEntropyLoss(255, w)(logits, label)) == pytest.approx(expected, rel=1e-5)
    # PaddleSeg's OHEM weights the numerator only: sum(w_y * CE) / (n_valid + eps * n) when it keeps every valid
    # pixel (min_kept >= valid count), not the weighted mean of CrossEntropyLoss
    ohem = float((ce * wy).sum() / n / (valid.sum() / n + 1e-5))
    assert float(OhemCrossEntropyLoss(0.7, 10_000, 255, w)(logits, label)) == pytest.approx(ohem, rel=1e-5)
    assert ohem != pytest.approx(expected, rel=1e-3)
    # equal weights change nothing
    assert float(CrossEntropyLoss(255, [3.0] * 3)(logits, label)) == pytest.approx(
        float(CrossEntropyLoss(255)(logits, label)), rel=1e-5)


def test_class_weights_are_checked():
    with pytest.raises(ValueError, match="positive"):
        CrossEntropyLoss(255, [1.0, 0.0])
    with pytest.raises(ValueError, match="2 class weights for a model with 3 classes"):
        OhemCrossEntropyLoss(0.7, 1, 255, [1.0, 2.0])(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_loss_registry_builds_the_configured_loss_against_hand_computed_values():
    from liteseg.config import LOSS_TYPES, LossConfig
    from liteseg.errors import LitesegError
    from liteseg.training.losses import LOSSES, build_loss

    assert tuple(LOSSES) == LOSS_TYPES  # the names configs are validated against
    logits, label = _case()
    ohem = build_loss(LossConfig(type="ohem", thresh=0.5, min_kept=2), ignore_index=255)
    assert float(ohem(logits, label).detach()) == pytest.approx(_expected([0.3]), rel=1e-5)
    ce = build_loss(LossConfig(type="ce"), ignore_index=255)
    assert float(ce(logits, label).detach()) == pytest.approx(_expected([0.9, 0.6, 0.3]), rel=1e-5)
    with pytest.raises(LitesegError, match="unknown loss 'ohme'; did you mean 'ohem'"):
        build_loss(LossConfig(type="ohme"))
