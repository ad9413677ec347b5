"""SegMetrics against hand-computed cases and a per-class PaddleSeg-style reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liteseg.evaluation.metrics import SegMetrics

LABEL = np.array([[0, 0, 1], [1, 255, 2]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_hand_computed_case_with_ignore_pixel():
    m = SegMetrics(3)
    m.update(PRED, LABEL)
    r = m.compute()
    # valid pixels (label, pred): (0,0) (0,1) (1,1) (1,1) (2,0); I=[1,2,0] P=[2,3,0] L=[2,2,1]
    assert r["class_iou"] == pytest.approx([1 / 3, 2 / 3, 0])
    assert r["miou"] == pytest.approx(1 / 3)
    assert r["acc"] == pytest.approx(3 / 5)
    assert r["class_precision"] == pytest.approx([1 / 2, 2 / 3, 0])
    assert r["class_recall"] == pytest.approx([1 / 2, 1, 0])
    assert r["mean_precision"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert r["mean_recall"] == pytest.approx(1.5 / 3)
    assert r["class_dice"] == pytest.approx([0.5, 0.8, 0])
    assert r["mdice"] == pytest.approx(1.3 / 3)
    # T=5, po=3/5, pe=(2*2+3*2+0*1)/25=0.4
    assert r["kappa"] == pytest.approx((0.6 - 0.4) / 0.6)
    assert r["num_pixels"] == 5
    assert r["absent_classes"] == []


def test_absent_class_counts_as_zero_or_is_excluded():
    m = SegMetrics(4)
    m.update(PRED, LABEL)
    r = m.compute()
    assert r["class_iou"][3] == 0 and r["absent_classes"] == [3]
    assert r["miou"] == pytest.approx((1 / 3 + 2 / 3) / 4)  # PaddleSeg 2.8.0: union 0 -> IoU 0, mean over all
    ex = SegMetrics(4, exclude_absent=True)
    ex.update(PRED, LABEL)
    r = ex.compute()
    assert r["miou"] == pytest.approx(1 / 3)  # class 2 (labelled, never predicted) stays in the mean
    assert r["mdice"] == pytest.approx(1.3 / 3)


def test_custom_ignore_index_and_tensors():
    m = SegMetrics(3, ignore_index=2)
    m.update(torch.tensor(PRED), torch.tensor(np.where(LABEL == 255, 1, LABEL)))
    # pixel (2,0) is now ignored, pixel (1,2) becomes label 1
    assert m.compute()["num_pixels"] == 5
    assert m.confusion.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 0]]


def _paddleseg_reference(preds, labels, c, ignore=255):
    """PaddleSeg 2.8.0 calculate_area + mean_iou/accuracy/kappa/dice, written per class as it does."""
    inter, parea, larea = np.zeros(c), np.zeros(c), np.zeros(c)
    for pred, label in zip(preds, labels):
        mask = label != ignore
        for i in range(c):
            pred_i = (pred == i) & mask
            label_i = label == i
            inter[i] += np.sum(pred_i & label_i)
            parea[i] += np.sum(pred_i)
            larea[i] += np.sum(label_i)
    union = parea + larea - inter
    iou = [0 if union[i] == 0 else inter[i] / union[i] for i in range(c)]
    dice = [0 if parea[i] + larea[i] == 0 else 2 * inter[i] / (parea[i] + larea[i]) for i in range(c)]
    total = larea.sum()
    po, pe = inter.sum() / total, np.sum(parea * larea) / (total * total)
    return {"miou": np.mean(iou), "class_iou": iou, "acc": inter.sum() / parea.sum(), "kappa": (po - pe) / (1 - pe),
            "mdice": np.mean(dice)}


def test_accumulation_matches_paddleseg_reference_and_merge():
    rng = np.random.default_rng(0)
    c = 6
    preds = [rng.integers(0, c - 1, (17, 23)) for _ in range(4)]  # class 5 never predicted
    labels = [np.where(rng.random((17, 23)) < 0.1, 255, rng.integers(0, c - 1, (17, 23))) for _ in range(4)]
    ref = _paddleseg_reference(preds, labels, c)
    a, b = SegMetrics(c), SegMetrics(c)
    for i, (p, lab) in enumerate(zip(preds, labels)):
        (a if i < 2 else b).update(p, lab)
    r = a.merge(b).compute()
    for key in ("miou", "acc", "kappa", "mdice"):
        assert r[key] == pytest.approx(ref[key], abs=1e-12)
    assert r["class_iou"] == pytest.approx(ref["class_iou"], abs=1e-12)
    whole = SegMetrics(c)
    whole.update(np.stack(preds), np.stack(labels))
    np.testing.assert_array_equal(whole.confusion, a.confusion)


def test_int64_counts_do_not_overflow():
    m = SegMetrics(2)
    m.confusion[0, 0] = 2**31 - 1  # e.g. 1000+ Cityscapes images of one class
    m.update(np.zeros(10, np.uint8), np.zeros(10, np.uint8))
    assert m.confusion[0, 0] == 2**31 + 9
    assert m.compute()["num_pixels"] == 2**31 + 9


def test_bad_inputs_raise_clear_errors():
    m = SegMetrics(3)
    with pytest.raises(ValueError, match=r"label values \[7\]"):
        m.update(np.zeros(2, int), np.array([0, 7]))
    with pytest.raises(ValueError, match=r"predicted values \[3\]"):
        m.update(np.array([0, 3]), np.zeros(2, int))
    with pytest.raises(TypeError, match="argmax"):
        m.update(np.zeros((2, 3), np.float32), np.zeros(2, int))
    with pytest.raises(ValueError, match="pixels"):
        m.update(np.zeros(3, int), np.zeros(2, int))
    assert m.compute()["miou"] == 0.0 and m.compute()["kappa"] == 0.0  # empty: no division by zero


def test_degenerate_counts_give_defined_numbers():
    """No pixels: means, accuracy and kappa are 0 (not NaN), with or without exclude_absent; one class predicted
    and labelled everywhere: IoU 1, kappa 0 (chance agreement is 1)."""
    for exclude in (False, True):
        empty = SegMetrics(3, exclude_absent=exclude).compute()
        assert (empty["miou"], empty["acc"], empty["kappa"], empty["mdice"]) == (0.0, 0.0, 0.0, 0.0)
        assert empty["num_pixels"] == 0 and empty["absent_classes"] == [0, 1, 2]
    single = SegMetrics(1)
    single.update(np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8))
    r = single.compute()
    assert (r["miou"], r["acc"], r["kappa"]) == (1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="num_classes must be positive, got 0"):
        SegMetrics(0)


def test_counts_are_int64_any_layout_and_reset_clears_them():
    m = SegMetrics(3)
    assert m.confusion.dtype == np.int64
    m.update(PRED.reshape(-1), LABEL)  # the same pixels, flat against 2-D
    flat = m.confusion.copy()
    m.reset()
    assert m.confusion.dtype == np.int64 and not m.confusion.any()
    m.update(PRED, LABEL)
    np.testing.assert_array_equal(m.confusion, flat)


def test_out_of_range_errors_list_ten_values_and_the_valid_range():
    m = SegMetrics(3)
    many = np.arange(3, 15).reshape(3, 4)  # 12 values outside 0-2, the first exactly the class count
    with pytest.raises(ValueError, match=r"^label values \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] are neither classes "
                                         r"0-2 nor the ignore index 255"):
        m.update(np.zeros((3, 4), np.int64), many)
    with pytest.raises(ValueError, match=r"^predicted values \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] are not classes "
                                         r"0-2$"):
        m.update(many, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match=r"^label values \[3\] are neither"):  # the class count alone
        m.update(np.zeros((1, 2), np.int64), np.array([[0, 3]]))
    with pytest.raises(ValueError, match="^cannot merge metrics of 4 classes into 3$"):
        m.merge(SegMetrics(4))
    assert not m.confusion.any()
