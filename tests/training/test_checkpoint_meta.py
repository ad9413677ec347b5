"""Trainer checkpoints keep their metadata through load, convert (safetensors, ONNX) and val."""
from __future__ import annotations

import json

import pytest
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.config import load_config
from liteseg.data import build_dataset
from liteseg.palettes import CAMVID_CLASSES
from liteseg.training import checkpoint as ckpt
from liteseg.training.train_log import read_csv

from ..conftest import require_module
from .train_helpers import TINY, overrides

pytestmark = pytest.mark.usefixtures("one_thread")
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def run(camvid_subset, small_val, tmp_path_factory):
    """``liteseg train``: 2 fine-tuning iterations of the shipped CamVid model with ImageNet mean/std (so that the
    scores are not trivial and depend on the normalisation), evaluated at the end."""
    out = tmp_path_factory.mktemp("run")
    args = overrides(camvid_subset, out, iters=2, **{"train.eval_interval": 2, "data.val": small_val,
                                                     "model.pretrained": "camvid", "optimizer.lr": 1e-4,
                                                     "augment.mean": json.dumps(IMAGENET["mean"]),
                                                     "augment.std": json.dumps(IMAGENET["std"])})
    assert main(["train", "-c", str(TINY), "--no-progress", *args]) == 0
    return out


def _check_meta(meta, run):
    assert meta.mean == pytest.approx(IMAGENET["mean"]) and meta.std == pytest.approx(IMAGENET["std"])
    assert meta.class_names == list(CAMVID_CLASSES) and meta.ignore_index == 255
    cfg = load_config(run / "config.yaml")
    train_set = build_dataset(cfg.data.train, "train", class_names=cfg.data.class_names)
    assert meta.palette == train_set.palette.tolist()  # the training data's colours
    assert meta.extra["training_config"] == load_config(run / "config.yaml").to_dict()
    assert meta.extra["training_config"]["augment"]["crop_size"] == [64, 64]  # the training input size
    val_set = build_dataset(cfg.data.val, cfg.data.val_split, class_names=meta.class_names)
    with Image.open(val_set.samples[0].image) as first:
        w, h = first.size
    scale = cfg.data.val_scale  # the size it was validated at: what predict and serve run it at
    assert meta.extra["input_size"] == [int(h * scale + 0.5), int(w * scale + 0.5)]


def test_checkpoints_load_with_their_metadata(run):
    trained = load_config(run / "config.yaml")
    for path in (run / ckpt.BEST_NAME, ckpt.list_checkpoints(run)[-1][1]):
        meta = liteseg.load(path).meta
        _check_meta(meta, run)
        assert meta.source == str(path)
    assert trained.augment.mean == pytest.approx(IMAGENET["mean"])


def test_metadata_survives_convert_and_val_reproduces_the_trainer(run, small_val, tmp_path):
    best = run / ckpt.BEST_NAME
    reference = liteseg.load(best).meta
    assert main(["convert", str(best), "-o", str(tmp_path / "m.safetensors")]) == 0
    native = liteseg.load(tmp_path / "m.safetensors").meta
    _check_meta(native, run)
    assert native.palette == reference.palette
    last_eval = read_csv(run / "eval_log.csv")[-1]["miou"]
    scores = {}
    for name, model in [("pt", best), ("safetensors", tmp_path / "m.safetensors")]:
        assert main(["val", "--model", str(model), "--data", small_val, "-o", str(tmp_path / name),
                     "--num-workers", "0", "--device", "cpu"]) == 0
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]["miou"]
    assert scores["pt"] == pytest.approx(last_eval, abs=1e-6)
    assert scores["safetensors"] == pytest.approx(last_eval, abs=1e-6)
    require_module("onnxruntime")
    assert main(["convert", str(best), "-o", str(tmp_path / "m.onnx")]) == 0
    from liteseg.inference.onnx_graph import open_graph

    _, graph_meta, _, _ = open_graph(tmp_path / "m.onnx")
    _check_meta(graph_meta, run)
    assert main(["val", "--model", str(tmp_path / "m.onnx"), "--data", small_val, "-o", str(tmp_path / "onnx"),
                 "--num-workers", "0"]) == 0  # no --backend: picked from the file
    onnx = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    assert onnx["protocol"]["backend"] == "onnxruntime"
    assert onnx["metrics"]["miou"] == pytest.approx(last_eval, abs=1e-3)
