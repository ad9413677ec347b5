"""The default model shipped in the package: present, small, documented, and its stored metrics reproduce."""
from __future__ import annotations

import pytest

import liteseg
from liteseg.loading import zoo
from liteseg.data import build_dataset
from liteseg.evaluation.evaluator import evaluate


def test_shipped_weights_are_small_fp16_with_metadata():
    path = zoo.DEFAULT_WEIGHTS
    assert path.is_file() and path.stat().st_size < 20_000_000
    loaded = liteseg.load("camvid")
    meta = loaded.meta
    assert meta.arch == "pp_liteseg_t" and meta.num_classes == 11 and meta.trained
    assert meta.class_names[0] == "Sky" and len(meta.palette) == 11
    assert meta.mean == [0.5] * 3 and meta.std == [0.5] * 3
    assert "CC BY-NC" in meta.license
    assert meta.metrics["miou"] >= 0.60 and "training_config" in meta.extra
    assert zoo.default_model() == str(path)
    model = liteseg.create_model("pp_liteseg_t", weights="camvid")
    assert model.seg_heads[0].conv_out.out_channels == 11


def test_val_reproduces_the_stored_metrics(camvid_dir):
    """Regression guard, not an accuracy proof: the stored metrics were written by this same evaluator, so a bug
    shared by both would pass. The independent check is the hand-computed one below."""
    loaded = liteseg.load("camvid")
    result = evaluate(loaded, build_dataset(f"camvid:{camvid_dir}", split="val"), progress=False)
    assert result.num_images == 101
    for key in ("miou", "acc", "kappa", "mdice"):
        assert result.metrics[key] == pytest.approx(loaded.meta.metrics[key], abs=2e-4), key


def test_info_shows_metrics_training_runs_and_licence(capsys):
    from liteseg.cli.main import main

    assert main(["info", "camvid"]) == 0
    out = capsys.readouterr().out
    assert "metrics:     miou 0.60" in out and "camvid val (101 images" in out
    assert "training 1:" in out and "training 3:" in out and "licence:     weights: CC BY-NC 4.0" in out


def test_evaluator_agrees_with_a_hand_computed_confusion_matrix(camvid_dir):
    """Independent of liteseg's evaluator and metrics: normalise by hand, plain forward, argmax, numpy bincount."""
    import numpy as np
    import torch
    from PIL import Image

    loaded = liteseg.load("camvid")
    dataset = build_dataset(f"camvid:{camvid_dir}", split="val")
    dataset.samples = dataset.samples[::25][:4]
    result = evaluate(loaded, dataset, progress=False)
    lines = [line.split() for line in (camvid_dir / "val.txt").read_text().split("\n") if line.strip()][::25][:4]
    confusion = np.zeros((11, 11), np.int64)
    for image_path, label_path in lines:
        rgb = np.asarray(Image.open(camvid_dir / image_path).convert("RGB"), np.float32)
        x = torch.from_numpy(((rgb / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            pred = loaded.model(x)[0].argmax(0).numpy()
        label = np.asarray(Image.open(camvid_dir / label_path)).astype(np.int64)
        valid = label != 255
        confusion += np.bincount(label[valid] * 11 + pred[valid], minlength=121).reshape(11, 11)
    np.testing.assert_array_equal(np.asarray(result.confusion), confusion)
    assert result.metrics["acc"] == pytest.approx(np.trace(confusion) / confusion.sum(), rel=1e-9)
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    iou = np.diag(confusion) / np.maximum(union, 1)
    assert result.metrics["miou"] == pytest.approx(iou.mean(), abs=1e-9)
