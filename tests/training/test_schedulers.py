"""Warmup + poly LR against hand-computed values (SPEC 6.1), both horizon conventions."""
from __future__ import annotations

import pytest
import torch

from liteseg.training.schedulers import WarmupPolyLR, warmup_poly_lr

CITY = dict(base_lr=0.005, iters=160000, warmup_iters=1000, warmup_start_lr=1e-5, power=0.9)


@pytest.mark.parametrize("t, horizon, expected", [
    (0, "total", 1e-5),
    (500, "total", 1e-5 + (0.005 - 1e-5) * 0.5),
    (999, "total", 1e-5 + (0.005 - 1e-5) * 0.999),
    (1000, "total", 0.005),
    (81000, "total", 0.005 * 0.5 ** 0.9),
    (81000, "after_warmup", 0.005 * (1 - 80000 / 159000) ** 0.9),
    (159999, "total", 0.005 * (1 - 158999 / 160000) ** 0.9),
    (160000, "total", 0.005 * (1000 / 160000) ** 0.9),  # release/2.5: never reaches 0
    (160000, "after_warmup", 0.0),                      # 2.8: reaches end_lr
    (170000, "after_warmup", 0.0),
])
def test_lr_values(t, horizon, expected):
    assert warmup_poly_lr(t, horizon=horizon, **CITY) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_camvid_schedule():
    kw = dict(base_lr=0.01, iters=10000, warmup_iters=200, warmup_start_lr=1e-5)
    assert warmup_poly_lr(100, **kw) == pytest.approx(1e-5 + (0.01 - 1e-5) * 0.5)
    assert warmup_poly_lr(5200, **kw) == pytest.approx(0.01 * 0.5 ** 0.9)


def test_scheduler_steps_like_the_function_and_resumes():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.01)
    sched = WarmupPolyLR(opt, iters=50, warmup_iters=10, warmup_start_lr=1e-4, horizon="after_warmup")
    seen = []
    for _ in range(30):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [warmup_poly_lr(t, base_lr=0.01, iters=50, warmup_iters=10, warmup_start_lr=1e-4,
                               horizon="after_warmup") for t in range(30)]
    assert seen == pytest.approx(expected, rel=1e-12)
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched2 = WarmupPolyLR(opt2, iters=50, warmup_iters=10, warmup_start_lr=1e-4, horizon="after_warmup")
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_unknown_horizon():
    with pytest.raises(ValueError, match="horizon"):
        warmup_poly_lr(0, base_lr=0.1, iters=10, horizon="paddle")
