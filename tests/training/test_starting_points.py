"""Starting points: ImageNet STDC .pdparams (PaddleSeg PP_STDCNet layout) and fine-tuning a full model."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from liteseg import create_model
from liteseg.training.starting_points import build_train_model, load_backbone_pdparams
from liteseg.errors import ArchitectureError
from liteseg.models.stdc import stdc1


def _paddle_name(key: str) -> str:
    return key.replace("running_mean", "_mean").replace("running_var", "_variance")


def _write_stdc_pdparams(path, backbone) -> dict:
    """A PP_STDCNet1-style file: no 'backbone.' prefix, plus conv_last and the ImageNet classifier."""
    state = {_paddle_name(k): v.numpy() + 0.5 for k, v in backbone.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    state["conv_last.conv.weight"] = np.zeros((1024, 1024, 1, 1), np.float32)
    state["fc.weight"] = np.zeros((1024, 1024), np.float32)
    state["linear.weight"] = np.zeros((1024, 1000), np.float32)
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=2)
    return state


def test_imagenet_backbone_loads_by_name_and_shape(tmp_path):
    state = _write_stdc_pdparams(tmp_path / "PP_STDCNet1.pdparams", stdc1())
    model, notes, _ = build_train_model("pp_liteseg_t", 11, backbone_pretrained=str(tmp_path / "PP_STDCNet1.pdparams"))
    loaded = model.backbone.state_dict()
    np.testing.assert_array_equal(loaded["features.0.conv.weight"].numpy(), state["features.0.conv.weight"])
    np.testing.assert_array_equal(loaded["features.0.bn.running_var"].numpy(), state["features.0.bn._variance"])
    assert "backbone weights from" in notes[-1] and "ignored" in notes[-1] and "fc.weight" in notes[-1]
    assert model.training


def test_wrong_backbone_variant_fails(tmp_path):
    from liteseg.models.stdc import stdc2

    _write_stdc_pdparams(tmp_path / "PP_STDCNet1.pdparams", stdc1())
    report = load_backbone_pdparams(stdc2(), tmp_path / "PP_STDCNet1.pdparams")  # shared early layers fit
    assert report.kept_default and report.loaded < len(stdc2().state_dict())
    with open(tmp_path / "other.pdparams", "wb") as f:
        pickle.dump({"fc.weight": np.zeros((2, 2), np.float32)}, f, protocol=2)
    with pytest.raises(ArchitectureError, match="no tensor fits"):
        load_backbone_pdparams(stdc1(), tmp_path / "other.pdparams")


def test_finetune_full_model_to_new_classes(tmp_path):
    source = create_model("pp_liteseg_t", num_classes=19)
    torch.save({"model": source.state_dict()}, tmp_path / "cityscapes.pt")
    model, notes, _ = build_train_model("pp_liteseg_t", 5, pretrained=str(tmp_path / "cityscapes.pt"))
    assert model.seg_heads[0].conv_out.weight.shape[0] == 5 and model.training
    assert torch.equal(model.backbone.features[0].conv.weight, source.backbone.features[0].conv.weight)
    assert "re-initialised" in notes[0] and "seg_heads.0.conv_out.weight" in notes[0]
