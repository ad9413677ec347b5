"""Architecture facts from SPEC.md: key layout, counts, channel plan, init, UAFM variants, SPPM pooling."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import liteseg
from liteseg.models import UAFM_TYPES, PPLiteSeg, adaptive_avg_pool2d_matmul
from liteseg.models.stdc import STDCNet


def _paddle_keys(model: nn.Module) -> list[str]:
    return [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name,entries,elements,backbone_entries", [
    ("pp_liteseg_t", 250, 8_153_205, 145), ("pp_liteseg_b", 370, 12_384_469, 265)])
def test_state_dict_counts_match_paddleseg(name, entries, elements, backbone_entries):
    model = liteseg.create_model(name, num_classes=19)
    keys = _paddle_keys(model)
    sd = model.state_dict()
    assert len(keys) == entries
    assert sum(sd[k].numel() for k in keys) == elements
    assert sum(k.startswith("backbone.") for k in keys) == backbone_entries


def test_key_order_inside_uafm_and_bottleneck():
    keys = _paddle_keys(liteseg.create_model("pp_liteseg_t"))
    arm = [k for k in keys if k.startswith("ppseg_head.arm_list.0.")]
    assert arm[0] == "ppseg_head.arm_list.0._scale"
    assert arm.index("ppseg_head.arm_list.0.conv_out._conv.weight") < arm.index(
        "ppseg_head.arm_list.0.conv_xy_atten.0._conv.weight")
    block = [k for k in keys if k.startswith("backbone.features.2.")]
    assert block.index("backbone.features.2.conv_list.3.bn.running_var") < block.index(
        "backbone.features.2.avd_layer.0.weight")


def test_only_sppm_convs_have_bias():
    model = liteseg.create_model("pp_liteseg_b")
    biased = sorted(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    assert biased == ["ppseg_head.cm.conv_out._conv"] + [f"ppseg_head.cm.stages.{i}.1._conv" for i in range(3)]


@pytest.mark.parametrize("name,arm,heads", [("pp_liteseg_t", [32, 64, 128], [32, 64, 64]),
                                            ("pp_liteseg_b", [64, 96, 128], [64, 64, 64])])
def test_channel_plan(name, arm, heads):
    model = liteseg.create_model(name)
    assert [a.conv_out._conv.out_channels for a in model.ppseg_head.arm_list] == arm
    assert [h.conv._conv.out_channels for h in model.seg_heads] == heads
    assert [a.conv_x._conv.in_channels for a in model.ppseg_head.arm_list] == [256, 512, 1024]


def test_feature_shapes_at_512x1024():
    model = liteseg.create_model("pp_liteseg_b").eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 512, 1024))
        heads = model.forward_features(torch.zeros(1, 3, 512, 1024))
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 256, 512), (64, 128, 256), (256, 64, 128),
                                                    (512, 32, 64), (1024, 16, 32)]
    assert [tuple(h.shape[1:]) for h in heads] == [(64, 64, 128), (96, 32, 64), (128, 16, 32)]


def test_paddle_style_initialisation():
    torch.manual_seed(0)
    model = liteseg.create_model("pp_liteseg_t")
    stem = model.backbone.features[0].conv.weight
    assert abs(stem.std().item() - 0.001) < 2e-4
    conv = model.ppseg_head.arm_list[2].conv_x._conv  # 3x3, 1024 in
    expected = math.sqrt(2 / (9 * 1024))
    assert abs(conv.weight.std().item() - expected) / expected < 0.05
    assert torch.all(model.ppseg_head.cm.stages[0][1]._conv.bias == 0)
    assert all(float(a._scale) == 1.0 and not a._scale.requires_grad for a in model.ppseg_head.arm_list)


@pytest.mark.parametrize("arm_type", sorted(UAFM_TYPES))
def test_every_uafm_variant_builds_and_runs(arm_type):
    model = liteseg.create_model("pp_liteseg_t", num_classes=3, arm_type=arm_type).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 70, 90)).shape == (2, 3, 70, 90)
    has_scale = any(k.endswith("._scale") for k in model.state_dict())
    assert has_scale == (arm_type == "UAFM_SpAtten")


def test_uafm_spatten_uses_loaded_scale():
    arm = liteseg.models.UAFM_SpAtten(8, 4, 4).eval()
    x, y = torch.rand(1, 8, 8, 8), torch.rand(1, 4, 4, 4)
    with torch.no_grad():
        base = arm(x, y)
        arm._scale.fill_(1.5)
        assert not torch.allclose(arm(x, y), base)


def test_uafm_rejects_smaller_low_level_feature():
    arm = liteseg.models.UAFM(4, 4, 4)
    with pytest.raises(ValueError, match="at least as large"):
        arm(torch.rand(1, 4, 4, 4), torch.rand(1, 4, 8, 8))


@pytest.mark.parametrize("hw", [(8, 16), (7, 5), (1, 3), (13, 29), (4, 4)])
@pytest.mark.parametrize("bins", [1, 2, 3, 4, 6])
def test_matmul_adaptive_pool_equals_native(hw, bins):
    x = torch.randn(2, 5, *hw, dtype=torch.float64)
    torch.testing.assert_close(adaptive_avg_pool2d_matmul(x, bins), nn.functional.adaptive_avg_pool2d(x, bins))


def test_broadcast_and_argument_errors():
    model = PPLiteSeg(4, backbone="STDC1", arm_out_chs=[32], seg_head_inter_chs=[16])
    assert model.config["arm_out_chs"] == [32, 32, 32] and model.config["seg_head_inter_chs"] == [16, 16, 16]
    with pytest.raises(ValueError, match="arm_out_chs"):
        PPLiteSeg(4, backbone="STDC1", arm_out_chs=[32, 64])
    with pytest.raises(ValueError, match="arm_type"):
        PPLiteSeg(4, backbone="STDC1", arm_type="UAFM_Nope")
    with pytest.raises(ValueError, match="backbone"):
        PPLiteSeg(4, backbone="STDC9")
    with pytest.raises(ValueError, match="num_classes"):
        PPLiteSeg(0)


def test_stdc_alone_is_a_feature_extractor():
    net = STDCNet(layers=(2, 2, 2)).eval()
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == net.feat_channels == [32, 64, 256, 512, 1024]
    add = STDCNet(layers=(1, 1, 1), type="add").eval()
    with torch.no_grad():
        assert add(torch.zeros(1, 3, 64, 64))[-1].shape == (1, 1024, 2, 2)
