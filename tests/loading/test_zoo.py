"""Published-weights table and the cache/download path (local file:// URLs only, never the network)."""
from __future__ import annotations

import hashlib

import pytest
import torch

import liteseg
from liteseg.loading import zoo
from liteseg.errors import LitesegError


def test_table_has_every_published_pp_liteseg_weight():
    names = liteseg.list_weights()
    assert {f"cityscapes_{v}_{s}" for v in "tb" for s in ("0.5", "0.75", "1.0")} <= set(names)
    assert {"camvid_t", "camvid_b", "fastdeploy_b_cityscapes"} <= set(names)
    b = zoo.WEIGHTS["cityscapes_b_1.0"]
    assert b.url == ("https://paddleseg.bj.bcebos.com/dygraph/cityscapes/"
                     "pp_liteseg_stdc2_cityscapes_1024x512_scale1.0_160k/model.pdparams")
    assert b.metrics["miou"] == 79.04 and b.num_classes == 19 and "non-commercial" in b.license
    assert zoo.WEIGHTS["fastdeploy_b_cityscapes"].file_name.endswith(".tgz")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LITESEG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_download_from_file_url_records_and_checks_sha256(fixture_dir, home):
    src = fixture_dir / "weights.pdparams"
    path = liteseg.get_weights("cityscapes_t_0.5", url=src.as_uri(), progress=False)
    assert path == home / "weights" / "cityscapes_t_0.5.pdparams" and path.read_bytes() == src.read_bytes()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (home / "weights" / "cityscapes_t_0.5.pdparams.sha256").read_text().split()[0] == digest
    path.write_bytes(path.read_bytes()[:-4] + b"oops")
    with pytest.raises(LitesegError, match="does not match"):
        liteseg.get_weights("cityscapes_t_0.5")


def test_user_supplied_sha256_is_verified(fixture_dir, home):
    with pytest.raises(LitesegError, match="does not match"):
        liteseg.get_weights("camvid_t", url=(fixture_dir / "weights.pdparams").as_uri(), sha256="0" * 64,
                            progress=False)


def test_cached_file_loads_offline_by_name_with_metadata(fixture_dir, home):
    target = home / "weights" / "cityscapes_t_1.0.pdparams"
    target.parent.mkdir(parents=True)
    target.write_bytes((fixture_dir / "weights.pdparams").read_bytes())
    loaded = liteseg.load("cityscapes_t_1.0")
    assert loaded.meta.metrics["miou"] == 77.04 and loaded.meta.extra["weights"] == "cityscapes_t_1.0"
    model = liteseg.create_model("pp_liteseg_t", weights="cityscapes_t_1.0")
    assert torch.equal(model.seg_heads[0].conv_out.weight, loaded.model.seg_heads[0].conv_out.weight)


def test_offline_without_cache_gives_a_clear_message(home):
    with pytest.raises(LitesegError, match="cannot download .* put it at .*cityscapes_b_0.5.pdparams"):
        liteseg.get_weights("cityscapes_b_0.5", url="file:///nonexistent/model.pdparams", progress=False)
    with pytest.raises(LitesegError, match="unknown weights"):
        liteseg.get_weights("imagenet")


def test_shipped_name_resolves_to_the_package_file(tmp_path, monkeypatch, fixture_dir):
    from liteseg.errors import FormatError
    from liteseg.formats.native import save_native

    missing = tmp_path / "absent.safetensors"
    monkeypatch.setitem(zoo.SHIPPED, "camvid", missing)
    assert "camvid" not in liteseg.list_weights()
    with pytest.raises(FormatError, match="not part of this installation"):
        liteseg.load("camvid")
    source = liteseg.load(fixture_dir / "weights.pdparams")
    meta = source.meta.to_dict()
    save_native(missing, source.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta})
    assert "camvid" in liteseg.list_weights()
    model = liteseg.create_model("pp_liteseg_t", weights="camvid")
    assert torch.equal(model.seg_heads[0].conv_out.weight, source.model.seg_heads[0].conv_out.weight)
