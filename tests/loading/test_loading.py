"""``liteseg.load`` / ``create_model(weights=...)`` across formats, and the native safetensors format."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import liteseg
from liteseg.errors import FormatError
from liteseg.formats.native import load_native, save_native


def test_load_unpacks_to_model_and_meta(fixture_dir):
    model, meta = liteseg.load(fixture_dir / "weights.pdparams")
    assert not model.training
    assert meta.arch == "pp_liteseg_t" and meta.num_classes == 19 and meta.source_format == "pdparams"


def test_safetensors_roundtrip_keeps_weights_and_metadata(fixture_dir, tmp_path, fixture_model):
    src = liteseg.load(fixture_dir / "inference")
    meta = src.meta.to_dict()
    path = tmp_path / "t.safetensors"
    save_native(path, src.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta})
    back = liteseg.load(path)
    assert back.meta.source_format == "safetensors" and back.meta.extra["feed"] == "x"
    assert back.meta.class_names == src.meta.class_names
    for key, value in src.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[key], value), key
    with pytest.raises(FormatError, match="already exists"):
        save_native(path, src.model.state_dict(), {"arch": "pp_liteseg_t"})


def test_half_precision_storage(tmp_path, fixture_model):
    path = tmp_path / "half.safetensors"
    save_native(path, fixture_model.state_dict(),
                {"arch": "pp_liteseg_t", "config": fixture_model.config, "meta": {}}, half=True)
    state, _ = load_native(path)
    assert state["seg_heads.0.conv_out.weight"].dtype == torch.float32
    assert path.stat().st_size < 17_000_000


def test_torch_state_dict_file(tmp_path, fixture_model):
    path = tmp_path / "model.pth"
    torch.save({"model": fixture_model.state_dict()}, path)
    model = liteseg.load(path).model
    assert torch.equal(model.seg_heads[0].conv_out.weight, fixture_model.seg_heads[0].conv_out.weight)


def test_create_model_with_weights_and_new_classes(fixture_dir):
    model = liteseg.create_model("pp_liteseg_t", weights=fixture_dir / "weights.pdparams")
    assert model.training and model.meta.num_classes == 19
    tuned = liteseg.create_model("pp_liteseg_t", weights=fixture_dir / "weights.pdparams", num_classes=4,
                                 reinit_head=True)
    assert tuned.seg_heads[2].conv_out.out_channels == 4
    ref = liteseg.load(fixture_dir / "weights.pdparams").model
    assert torch.equal(tuned.backbone.features[5].conv_list[1].conv.weight,
                       ref.backbone.features[5].conv_list[1].conv.weight)
    with pytest.raises(ValueError, match="cannot be combined"):
        liteseg.create_model("pp_liteseg_t", weights=fixture_dir / "weights.pdparams", arm_type="UAFM")


def test_unknown_extension_and_safetensors_without_metadata(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    with pytest.raises(FormatError, match="unknown model file type"):
        liteseg.load(bad)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(1)}, str(plain))
    with pytest.raises(FormatError, match="without liteseg metadata"):
        liteseg.load(plain)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(FormatError, match="truncated or corrupt"):
        liteseg.load(broken)


def test_load_time_is_recorded(fixture_dir, monkeypatch):
    import time
    from types import SimpleNamespace

    start = time.perf_counter()
    loaded = liteseg.load(fixture_dir / "inference")
    assert 0 < loaded.load_seconds <= time.perf_counter() - start  # measured around the whole load
    clock = iter([100.0, 103.5])
    monkeypatch.setattr(liteseg.loading.loader, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert liteseg.load(fixture_dir / "weights.pdparams").load_seconds == 3.5  # end minus start, in seconds
