"""Shared checks every registered model runs through (smp's BaseModelTester idea)."""
from __future__ import annotations

import pytest
import torch

import liteseg

from ..conftest import randomize_


class BaseModelTester:
    """Subclasses set ``model_name``; they get shape, dtype, train/eval, odd-size, batch and backward checks."""

    model_name: str = ""
    num_classes: int = 5

    @pytest.fixture(scope="class")
    def model(self):
        torch.manual_seed(0)
        return liteseg.create_model(self.model_name, num_classes=self.num_classes).eval()

    @pytest.mark.parametrize("hw", [(64, 64), (67, 101), (33, 200), (1, 1)])
    def test_eval_output_is_input_size(self, model, hw):
        with torch.no_grad():
            out = model(torch.randn(1, 3, *hw))
        assert out.shape == (1, self.num_classes, *hw)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()

    def test_batch_items_are_independent(self):
        """Batched == one at a time, on randomised weights: PaddleSeg's init gives eval logits of ~1e-9, on which
        any batch mixing (e.g. every item replaced by the batch mean) would pass unnoticed."""
        model = randomize_(liteseg.create_model(self.model_name, num_classes=self.num_classes), seed=1).eval()
        x = torch.randn(3, 3, 48, 80, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            batched = model(x)
            single = torch.cat([model(x[i:i + 1]) for i in range(3)])
        scale = single.abs().max().item()
        assert scale > 0.1, f"logits of scale {scale:.3g} cannot show batch mixing"
        spread = (single - single.mean(0, keepdim=True)).abs().max().item()
        assert spread > 0.1 * scale, "the items' logits must differ for the comparison to mean anything"
        torch.testing.assert_close(batched, single, atol=1e-5 * scale, rtol=1e-4)

    def test_train_mode_returns_three_logits_and_backprops(self):
        torch.manual_seed(0)
        model = liteseg.create_model(self.model_name, num_classes=self.num_classes).train()
        outs = model(torch.randn(2, 3, 64, 96))
        assert isinstance(outs, list) and len(outs) == 3
        assert all(o.shape == (2, self.num_classes, 64, 96) for o in outs)
        sum(o.mean() for o in outs).backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
        assert not any(n.endswith("_scale") for n in grads), "_scale must stay frozen"

    def test_list_mode_like_paddleseg(self, model):
        model.return_list = True
        try:
            out = model(torch.randn(1, 3, 32, 32))
        finally:
            model.return_list = False
        assert isinstance(out, list) and len(out) == 1

    def test_config_rebuilds_the_same_architecture(self, model):
        config = dict(model.config)
        rebuilt = liteseg.create_model(self.model_name, **config)
        assert list(rebuilt.state_dict()) == list(model.state_dict())
