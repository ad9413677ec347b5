"""predict and val options that had no test: the optimised backends on the real PP-LiteSeg, --half, --split and
--flip-v; each against the model's own eager argmax (randomised weights, tiny CamVid-format data)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.formats.native import save_native

from ..conftest import randomize_

NUM_CLASSES = 11  # CamVid's, so val --data camvid: takes the model
# torch-compile compiles the real model for minutes on a 2-core machine: run with -m compile_full (not in CI)
COMPILED = pytest.param("torch-compile", marks=pytest.mark.compile_full)


@pytest.fixture(scope="module")
def model():
    return randomize_(liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES), seed=3).eval()


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "t.safetensors"
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": dict(model.config), "meta": {}})
    return path


@pytest.fixture(scope="module")
def camvid(tmp_path_factory):
    """A CamVid-format root of 32x48 images: val.txt lists two, test.txt two others."""
    root = tmp_path_factory.mktemp("camvid")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, NUM_CLASSES, (32, 48), dtype=np.uint8)).save(root / "labels" / f"{i}.png")
    for split, ids in (("val", (0, 1)), ("test", (2, 3))):
        (root / f"{split}.txt").write_text("".join(f"images/{i}.png labels/{i}.png\n" for i in ids))
    return root


def _logits(model, rgb: np.ndarray, flip_v: bool = False) -> np.ndarray:
    """Eager float32 logits [C, H, W] of one RGB uint8 image (mean/std 0.5), averaged with the vertically flipped
    pass when asked."""
    x = torch.from_numpy(((rgb.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        logits = model(x)
        if flip_v:
            logits = (logits + model(x.flip(2)).flip(2)) / 2
    return logits[0].numpy()


def _confident(logits: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    top2 = np.sort(logits, axis=0)[-2:]
    return top2[1] - top2[0] > margin


@pytest.mark.parametrize("backend", ["torch-opt", COMPILED])
def test_predict_with_an_optimised_backend_writes_the_models_labels(backend, model, model_file, camvid, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(camvid / "images" / "[01].png"), "--model", str(model_file), "--backend", backend,
                 "-o", str(out), "--save", "labels"]) == 0
    for i in range(2):
        logits = _logits(model, np.asarray(Image.open(camvid / "images" / f"{i}.png")))
        labels = np.asarray(Image.open(out / "labels" / f"{i}.png"))
        sure = _confident(logits)
        assert sure.mean() > 0.95
        np.testing.assert_array_equal(labels[sure], logits.argmax(0)[sure], err_msg=f"{i}.png")


def test_predict_half_runs_reduced_precision_close_to_float32(model, model_file, camvid, tmp_path):
    """--half (bfloat16 autocast on CPU): the saved probabilities differ from float32's (so reduced precision
    really ran) by little, and the labels agree wherever float32 is not near a tie."""
    out = tmp_path / "out"
    image = camvid / "images" / "0.png"
    assert main(["predict", str(image), "--model", str(model_file), "--half", "-o", str(out), "--save-probs",
                 "--save", "labels"]) == 0
    logits = _logits(model, np.asarray(Image.open(image)))
    reference = torch.softmax(torch.from_numpy(logits), 0).numpy()
    diff = np.abs(np.load(out / "probs" / "0.npy") - reference).max()
    assert 3e-4 < diff < 0.05, diff  # float32 against this reference: ~6e-5; bfloat16: ~1e-3
    labels = np.asarray(Image.open(out / "labels" / "0.png"))
    sure = _confident(logits, 0.2)
    assert sure.mean() > 0.5
    np.testing.assert_array_equal(labels[sure], logits.argmax(0)[sure])


def _confusion(model, root, split: str, flip_v: bool) -> np.ndarray:
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for line in (root / f"{split}.txt").read_text().split("\n")[:-1]:
        image, label = line.split()
        pred = _logits(model, np.asarray(Image.open(root / image)), flip_v).argmax(0)
        np.add.at(cm, (np.asarray(Image.open(root / label)).astype(np.int64), pred), 1)
    return cm


@pytest.mark.parametrize("backend", ["torch", "torch-opt", COMPILED])
def test_val_scores_the_named_split_with_vertical_flips(backend, model, model_file, camvid, tmp_path):
    out = tmp_path / backend
    assert main(["val", "--model", str(model_file), "--data", f"camvid:{camvid}", "--split", "test", "--flip-v",
                 "--backend", backend, "--num-workers", "0", "-o", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    expected = _confusion(model, camvid, "test", flip_v=True)
    assert report["num_images"] == 2 and report["protocol"]["flip_v"] is True
    ours = np.array(report["confusion"])
    if backend == "torch":
        np.testing.assert_array_equal(ours, expected)
        for other in (_confusion(model, camvid, "val", True), _confusion(model, camvid, "test", False)):
            assert np.abs(other - expected).sum() > 0.05 * expected.sum(), "split and flip must change the counts"
    else:  # other kernels: a pixel near a tie may flip
        assert np.abs(ours - expected).sum() <= 0.01 * expected.sum()
