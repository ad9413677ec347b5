"""The training loop on a small CamVid subset: learning, exact resume (SIGKILL, Ctrl-C), NaN stop, outputs."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import liteseg
from liteseg.cli.main import main
from liteseg.config import load_config
from liteseg.training import checkpoint as ckpt
from liteseg.training.train_log import read_csv
from liteseg.training.trainer import Trainer, TrainingError

from .train_helpers import REPO, TINY, assert_same_state, final_state, overrides

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(camvid_subset: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An uninterrupted 8-iteration run."""
    out = tmp_path_factory.mktemp("reference")
    Trainer(load_config(TINY, overrides(camvid_subset, out)), progress=False).fit()
    return final_state(out)


def test_loss_decreases(camvid_subset, tmp_path):
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path, iters=12, **{"augment.distort": "false",
                                                                          "augment.flip_prob": 0}))
    result = Trainer(cfg, progress=False).fit()
    losses = [r["loss"] for r in read_csv(tmp_path / "train_log.csv")]
    assert result.iteration == 12 and len(losses) == 12
    assert sum(losses[8:12]) / 4 < sum(losses[:4]) / 4


def test_sigkill_then_resume_is_bitwise_identical_with_workers(camvid_subset, reference, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(torch.get_num_threads()))
    cmd = [sys.executable, "-m", "liteseg", "train", "-c", str(TINY), "--no-progress",
           *overrides(camvid_subset, tmp_path, **{"data.num_workers": 1})]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = ckpt.checkpoint_path(tmp_path, 2)
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert ckpt.list_checkpoints(tmp_path)[-1][0] < 8  # really killed mid-run
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path, **{"data.num_workers": 1}))
    result = Trainer(cfg, resume="auto", progress=False).fit()
    assert result.iteration == 8
    assert_same_state(final_state(tmp_path), reference)
    iters = [int(r["iter"]) for r in read_csv(tmp_path / "train_log.csv")]
    assert iters == list(range(1, 9))  # rows after the checkpoint were dropped and written again


def test_ctrl_c_saves_then_resume_is_bitwise_identical(camvid_subset, reference, tmp_path, monkeypatch, caplog):
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path))
    trainer = Trainer(cfg, progress=False)
    step = trainer.train_step
    calls = []

    def step_then_interrupt(images, labels):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C in the middle of iteration 3
        return step(images, labels)

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    result = trainer.fit()
    assert result.interrupted and result.iteration == 3
    assert ckpt.list_checkpoints(tmp_path)[-1][0] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # resumed from the command line as a user would, naming only the YAML and the run: the run's saved settings
    # (data, batch 2, 64x64 crops, ...) continue, not the YAML's (full CamVid, batch 4, 128x128); a change may
    # follow --resume and is reported
    caplog.set_level(logging.INFO)
    assert main(["train", "-c", str(TINY), f"train.output_dir={tmp_path}", "--no-progress", "--resume", "auto",
                 "train.log_interval=2"]) == 0
    assert_same_state(final_state(tmp_path), reference)
    assert "train.log_interval: 1 -> 2" in caplog.text and "its values are not re-read" in caplog.text
    assert load_config(tmp_path / "config.yaml").data.batch_size == 2


def test_nan_loss_stops_before_the_update(camvid_subset, tmp_path, monkeypatch):
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path))
    trainer = Trainer(cfg, progress=False)
    loss_fn = trainer.loss_fn
    calls = []

    def nan_at_third(outputs, label):
        calls.append(1)
        total, terms = loss_fn(outputs, label)
        return (total * float("nan"), terms) if len(calls) == 3 else (total, terms)

    monkeypatch.setattr(trainer, "loss_fn", nan_at_third)
    monkeypatch.setattr(trainer.loss_fn, "coefs", loss_fn.coefs, raising=False)
    with pytest.raises(TrainingError, match=r"nan at iteration 3.*iter_0000002\.pt"):
        trainer.fit()
    state = final_state(tmp_path)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_full_run_outputs_and_best_model(camvid_subset, small_val, tmp_path):
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path, iters=4, **{
        "train.eval_interval": 2, "train.plot": True, "train.keep_checkpoints": 1, "data.val": small_val}))
    result = Trainer(cfg, progress=False).fit()
    assert [p.name for _, p in ckpt.list_checkpoints(tmp_path)] == ["iter_0000004.pt"]
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert load_config(tmp_path / "config.yaml").to_dict() == cfg.to_dict()
    evals = read_csv(tmp_path / "eval_log.csv")
    assert [r["iter"] for r in evals] == [2, 4]
    assert result.best_miou == pytest.approx(max(r["miou"] for r in evals), rel=1e-5)
    model, meta = liteseg.load(tmp_path / ckpt.BEST_NAME)
    assert meta.num_classes == 11 and model(torch.zeros(1, 3, 32, 32)).shape == (1, 11, 32, 32)
    with pytest.raises(TrainingError, match="already holds a training run"):
        Trainer(cfg, progress=False)


def test_class_weights_reach_the_loss_and_are_checked(camvid_subset, tmp_path):
    weights = "[" + ",".join(str(1.0 + i / 10) for i in range(11)) + "]"
    trainer = Trainer(load_config(TINY, overrides(camvid_subset, tmp_path / "a", **{"loss.class_weights": weights})))
    assert trainer.loss_fn.loss.weight.tolist() == pytest.approx([1.0 + i / 10 for i in range(11)])
    with pytest.raises(TrainingError, match="loss.class_weights has 2 values for 11 classes"):
        Trainer(load_config(TINY, overrides(camvid_subset, tmp_path / "b", **{"loss.class_weights": "[1,2]"})))


def test_class_weights_are_checked_against_the_data_without_model_num_classes(camvid_subset, tmp_path):
    """configs/custom_dataset_example.yaml leaves model.num_classes unset: the data's class count applies."""
    eleven = "[" + ",".join(["1.0"] * 11) + "]"
    cfg = load_config(TINY, overrides(camvid_subset, tmp_path / "a", **{"model.num_classes": "null",
                                                                        "loss.class_weights": eleven}))
    assert cfg.model.num_classes is None
    assert Trainer(cfg).loss_fn.loss.weight.tolist() == [1.0] * 11
    with pytest.raises(TrainingError, match="loss.class_weights has 2 values for 11 classes"):
        Trainer(load_config(TINY, overrides(camvid_subset, tmp_path / "b", **{"model.num_classes": "null",
                                                                              "loss.class_weights": "[1,2]"})))


def test_no_progress_logs_give_an_eta(camvid_subset, tmp_path, caplog):
    caplog.set_level("INFO", logger="liteseg")
    Trainer(load_config(TINY, overrides(camvid_subset, tmp_path, iters=2)), progress=False).fit()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iter ")]
    assert lines and all(re.search(r"ETA \d+:\d\d", line) for line in lines), lines
