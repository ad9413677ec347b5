"""Training paths no other test reached: the fp16 GradScaler logic (on CPU), the EMA arithmetic, the head-loss
columns, TensorBoard."""
from __future__ import annotations

import pytest
import torch

from liteseg.config import load_config
from liteseg.training.train_log import read_csv
from liteseg.training.trainer import Trainer

from ..conftest import require_module
from .train_helpers import TINY, final_state, overrides

pytestmark = pytest.mark.usefixtures("one_thread")
KEY = "seg_heads.0.conv_out.weight"


def _trainer(data: str, out, iters: int = 2, **extra) -> Trainer:
    return Trainer(load_config(TINY, overrides(data, out, iters=iters, **{"loss.type": "ce", **extra})),
                   progress=False)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_grad_scaler_step_equals_the_unscaled_step_and_skips_non_finite_gradients(camvid_subset, tmp_path):
    """train.amp=fp16 is CUDA-only; its GradScaler logic (scaled backward, unscale in step, skip on inf/nan,
    scale update, checkpointed state) is the same on CPU, so it runs here with a CPU scaler."""
    plain, scaled = _trainer(camvid_subset, tmp_path / "a"), _trainer(camvid_subset, tmp_path / "b")
    scaled.model.load_state_dict(plain.model.state_dict())
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=1)
    images, labels = next(iter(plain._loader()))
    for t in (plain, scaled):
        t.model.train()
        t.train_step(images, labels)
    grad = scaled.model.seg_heads[0].conv_out.weight.grad
    ref = plain.model.seg_heads[0].conv_out.weight.grad
    torch.testing.assert_close(grad, ref * 2.0 ** 10, rtol=1e-4, atol=1e-8)  # backward ran on the scaled loss
    for t in (plain, scaled):
        t._optimizer_step()
    stepped = _weights(scaled)
    for key, value in _weights(plain).items():  # the scaler unscaled before stepping: the same update
        torch.testing.assert_close(stepped[key], value, rtol=1e-5, atol=1e-7, msg=key)
    assert scaled.scaler.get_scale() == 2.0 ** 11  # growth_interval=1: one clean step doubles the scale

    before = _weights(scaled)
    scaled.train_step(images, labels)
    scaled.model.seg_heads[0].conv_out.weight.grad[0, 0] = float("inf")
    scaled._optimizer_step()
    after = _weights(scaled)
    assert all(torch.equal(after[k], before[k]) for k in before if k.endswith("weight"))  # step skipped
    assert scaled.scaler.get_scale() == 2.0 ** 10  # and the scale backed off

    assert scaled.checkpoint_state(2)["scaler"]["scale"] == 2.0 ** 10  # resumes with the backed-off scale


def test_ema_follows_the_decay_arithmetic(camvid_subset, tmp_path):
    """ema_1 = w_1, then ema_t = d * ema_(t-1) + (1 - d) * w_t after every optimizer step (d = ema_decay)."""
    decay = 0.75
    trainer = _trainer(camvid_subset, tmp_path, iters=3, **{"train.ema_decay": decay})
    seen: list[torch.Tensor] = []
    update = trainer.ema.update_parameters

    def record(model):
        seen.append(model.state_dict()[KEY].detach().clone())
        update(model)

    trainer.ema.update_parameters = record
    trainer.fit()
    assert len(seen) == 3 and not torch.equal(seen[0], seen[-1])
    expected = seen[0]
    for w in seen[1:]:
        expected = decay * expected + (1 - decay) * w
    state = final_state(tmp_path)
    torch.testing.assert_close(state["ema_model"][KEY], expected, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(state["model"][KEY], seen[-1])
    # a wrong decay (or one applied the other way round) gives other weights
    assert not torch.allclose(state["ema_model"][KEY], (1 - decay) * seen[1] + decay * seen[2], atol=1e-7)


def test_csv_and_tensorboard_log_each_head_loss_by_name(camvid_subset, tmp_path):
    """train_log.csv: loss = sum of loss.coefs x head losses, each head in its own column (distinct coefficients
    catch a column shifted or two swapped); TensorBoard gets the same scalars."""
    require_module("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _trainer(camvid_subset, tmp_path, **{"train.tensorboard": "true", "loss.coefs": "[1.0, 0.5, 0.25]"}).fit()
    rows = read_csv(tmp_path / "train_log.csv")
    assert [r["iter"] for r in rows] == [1, 2]
    for r in rows:
        heads = r["loss_main"] + 0.5 * r["loss_aux16"] + 0.25 * r["loss_aux32"]
        assert r["loss"] == pytest.approx(heads, rel=1e-5) and r["loss_aux16"] != r["loss_aux32"]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/loss_main", "train/loss_aux16", "train/loss_aux32"} <= set(events.Tags()["scalars"])
    for name in ("loss", "loss_main", "loss_aux16", "loss_aux32"):
        scalars = events.Scalars(f"train/{name}")
        assert [e.step for e in scalars] == [1, 2]
        assert [e.value for e in scalars] == pytest.approx([r[name] for r in rows], rel=1e-5)


def test_missing_tensorboard_is_reported_before_training(camvid_subset, tmp_path, monkeypatch):
    import importlib.util

    import liteseg
    from liteseg.training import train_log

    real = importlib.util.find_spec
    monkeypatch.setattr(train_log.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(liteseg.LitesegError, match=r"pip install 'liteseg\[tensorboard\]'"):
        _trainer(camvid_subset, tmp_path, **{"train.tensorboard": "true"})
