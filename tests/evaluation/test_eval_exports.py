"""evaluate() on ONNX exports that output probs or labels, or take uint8 images: same scores as PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.data import ListDataset
from liteseg.errors import LitesegError
from liteseg.evaluation.evaluator import evaluate
from liteseg.inference.backends import resolve_model

from ..conftest import randomize_, require_module

require_module("onnxruntime")
from liteseg.export.onnx import export_onnx  # noqa: E402

NUM_CLASSES = 3
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four 64x96 random images with labels drawn from a smooth pattern (the scores only need to agree)."""
    root = tmp_path_factory.mktemp("exports")
    rng = np.random.default_rng(3)
    lines = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(root / f"{i}.png")
        Image.fromarray(rng.integers(0, NUM_CLASSES, (64, 96), dtype=np.uint8)).save(root / f"{i}_l.png")
        lines.append(f"{i}.png {i}_l.png")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


@pytest.fixture(scope="module")
def loaded():
    """A random T model (fixture-like weights: clear argmax) with ImageNet normalisation in its metadata (so
    baked-in preprocessing matters)."""
    torch.manual_seed(0)
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES)).eval()
    out = resolve_model(model)
    out.meta.mean, out.meta.std = IMAGENET["mean"], IMAGENET["std"]
    return out


@pytest.fixture(scope="module")
def torch_result(loaded, data):
    return evaluate(loaded, ListDataset(data, num_classes=NUM_CLASSES), progress=False)


@pytest.mark.parametrize("options", [dict(output="probs"), dict(output="labels"),
                                     dict(output="labels", labels_dtype="uint8"),
                                     dict(include_preprocess=True), dict(include_preprocess=True, input_layout="nhwc"),
                                     dict(include_preprocess=True, output="labels")],
                         ids=["probs", "labels", "labels-uint8", "preprocess", "preprocess-nhwc", "preprocess-labels"])
def test_export_kinds_score_like_torch(loaded, data, torch_result, tmp_path, options):
    path = tmp_path / "m.onnx"
    export_onnx(loaded, path, verify=False, **options)
    result = evaluate(str(path), ListDataset(data, num_classes=NUM_CLASSES), backend="onnxruntime", progress=False)
    pixels = torch_result.confusion.sum()
    assert np.abs(result.confusion - torch_result.confusion).sum() <= 1e-3 * pixels  # float rounding at ties only
    assert result.metrics["miou"] == pytest.approx(torch_result.metrics["miou"], abs=1e-3)


def test_tta_on_a_labels_export_is_refused_up_front(loaded, data, tmp_path):
    path = tmp_path / "labels.onnx"
    export_onnx(loaded, path, verify=False, output="labels")
    with pytest.raises(LitesegError, match="outputs labels.*without --flip"):
        evaluate(str(path), ListDataset(data, num_classes=NUM_CLASSES), backend="onnxruntime", flip=True,
                 progress=False)
