"""Published-weights table and the cache/download path (local file:// URLs only, never the network)."""
from __future__ import annotations

import hashlib

import pytest
import torch

import liteseg
from liteseg.loading import zoo
from liteseg.errors import LitesegError


def test_table_has_every_published_pp_liteseg_weight_named_per_architecture():
    names = liteseg.list_weights()
    assert {f"pp_liteseg_{v}.cityscapes_1024x512_scale{s}" for v in "tb" for s in ("0.5", "0.75", "1.0")} <= set(names)
    assert {"pp_liteseg_t.camvid_960x720", "pp_liteseg_b.camvid_960x720", "pp_liteseg_t.camvid",
            "pp_liteseg_b.cityscapes_1024x512_scale1.0_fastdeploy"} <= set(names)
    assert all(name.split(".")[0] == zoo.WEIGHTS.get(name).arch for name in names)
    b = zoo.WEIGHTS.get("pp_liteseg_b.cityscapes_1024x512_scale1.0")
    assert b.url == ("https://paddleseg.bj.bcebos.com/dygraph/cityscapes/"
                     "pp_liteseg_stdc2_cityscapes_1024x512_scale1.0_160k/model.pdparams")
    assert b.metrics["miou"] == 79.04 and b.num_classes == 19 and "non-commercial" in b.license
    assert b.class_names[0] == "road" and b.mean == b.std == (0.5, 0.5, 0.5)
    assert zoo.record("fastdeploy_b_cityscapes").file_name.endswith(".tgz")


@pytest.mark.parametrize("alias, name", [
    ("cityscapes_t_0.5", "pp_liteseg_t.cityscapes_1024x512_scale0.5"),
    ("cityscapes_b_1.0", "pp_liteseg_b.cityscapes_1024x512_scale1.0"),
    ("camvid_t", "pp_liteseg_t.camvid_960x720"), ("camvid_b", "pp_liteseg_b.camvid_960x720"),
    ("fastdeploy_b_cityscapes", "pp_liteseg_b.cityscapes_1024x512_scale1.0_fastdeploy"),
    ("camvid", "pp_liteseg_t.camvid")])
def test_old_names_are_aliases(alias, name):
    assert zoo.canonical_name(alias) == name and zoo.record(alias) is zoo.WEIGHTS.get(name)
    assert alias not in liteseg.list_weights()


def test_shipped_record_matches_the_shipped_file():
    from liteseg.formats.native import load_native

    entry = zoo.record("camvid")
    path = zoo.DEFAULT_WEIGHTS
    assert entry.file_size == path.stat().st_size and entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    meta = load_native(path)[1]["meta"]
    assert list(entry.class_names) == meta["class_names"] and list(entry.mean) == meta["mean"]
    assert list(entry.std) == meta["std"] and entry.license == meta["license"]
    assert entry.metrics["miou"] == round(100 * meta["metrics"]["miou"], 2)


def test_info_prints_the_record_without_downloading(home, capsys):
    from liteseg.cli.main import main

    assert main(["info", "cityscapes_b_1.0"]) == 0
    out = capsys.readouterr().out
    assert "name:        pp_liteseg_b.cityscapes_1024x512_scale1.0 (also: cityscapes_b_1.0)" in out
    assert "classes:     19: road, sidewalk" in out and "mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]" in out
    assert "reported:    miou 79.04" in out and "non-commercial" in out and "bcebos.com" in out
    assert not (home / "weights").exists()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LITESEG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_download_from_file_url_records_and_checks_sha256(fixture_dir, home):
    src = fixture_dir / "weights.pdparams"
    path = liteseg.get_weights("cityscapes_t_0.5", url=src.as_uri(), progress=False)
    name = "pp_liteseg_t.cityscapes_1024x512_scale0.5.pdparams"
    assert path == home / "weights" / name and path.read_bytes() == src.read_bytes()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (home / "weights" / f"{name}.sha256").read_text().split()[0] == digest
    path.write_bytes(path.read_bytes()[:-4] + b"oops")
    with pytest.raises(LitesegError, match="does not match"):
        liteseg.get_weights("cityscapes_t_0.5")


def test_user_supplied_sha256_is_verified(fixture_dir, home):
    with pytest.raises(LitesegError, match="does not match"):
        liteseg.get_weights("camvid_t", url=(fixture_dir / "weights.pdparams").as_uri(), sha256="0" * 64,
                            progress=False)
    assert not any((home / "weights").iterdir())  # nothing kept, not even a partial file


@pytest.mark.parametrize("cached_as", ["pp_liteseg_t.cityscapes_1024x512_scale1.0", "cityscapes_t_1.0"])
def test_cached_file_loads_offline_by_name_with_metadata(fixture_dir, home, cached_as):
    target = home / "weights" / f"{cached_as}.pdparams"  # also a cache filled under the old name
    target.parent.mkdir(parents=True)
    target.write_bytes((fixture_dir / "weights.pdparams").read_bytes())
    loaded = liteseg.load("cityscapes_t_1.0")
    assert loaded.meta.metrics["miou"] == 77.04
    assert loaded.meta.extra["weights"] == "pp_liteseg_t.cityscapes_1024x512_scale1.0"
    model = liteseg.create_model("pp_liteseg_t", weights="cityscapes_t_1.0")
    assert torch.equal(model.seg_heads[0].conv_out.weight, loaded.model.seg_heads[0].conv_out.weight)


def test_offline_without_cache_gives_a_clear_message(home):
    with pytest.raises(LitesegError, match="cannot download .* put it at .*pp_liteseg_b.cityscapes_1024x512_scale0.5"):
        liteseg.get_weights("cityscapes_b_0.5", url="file:///nonexistent/model.pdparams", progress=False)
    with pytest.raises(LitesegError, match="unknown weights"):
        liteseg.get_weights("imagenet")


def test_shipped_name_resolves_to_the_package_file(tmp_path, monkeypatch, fixture_dir):
    from liteseg.errors import FormatError
    from liteseg.formats.native import save_native

    missing = tmp_path / "absent.safetensors"
    monkeypatch.setitem(zoo.SHIPPED, "pp_liteseg_t.camvid", missing)
    assert "pp_liteseg_t.camvid" not in liteseg.list_weights()
    with pytest.raises(FormatError, match="not part of this installation"):
        liteseg.load("camvid")
    source = liteseg.load(fixture_dir / "weights.pdparams")
    meta = source.meta.to_dict()
    save_native(missing, source.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta})
    assert "pp_liteseg_t.camvid" in liteseg.list_weights()
    model = liteseg.create_model("pp_liteseg_t", weights="camvid")
    assert torch.equal(model.seg_heads[0].conv_out.weight, source.model.seg_heads[0].conv_out.weight)


def test_create_model_pretrained_loads_weights_by_timm_name(fixture_dir, home, monkeypatch):
    from urllib.error import URLError

    from liteseg.formats.native import load_native
    from liteseg.formats.pdparams import read_pdparams

    shipped = load_native(zoo.DEFAULT_WEIGHTS)[0]["seg_heads.0.conv_out.weight"]
    for name in ("pp_liteseg_t.camvid", "pp_liteseg_t"):  # the weight name, a bare architecture (its default)
        model = liteseg.create_model(name, pretrained=True)
        assert model.training and torch.equal(model.seg_heads[0].conv_out.weight.detach(), shipped), name
    published = liteseg.list_models(pretrained=True)
    assert {"pp_liteseg_t.camvid", "pp_liteseg_b.cityscapes_1024x512_scale1.0"} <= set(published)
    assert liteseg.list_models("pp_liteseg_b.*", pretrained=True) == [n for n in published if n[11] == "b"]
    assert liteseg.list_models() == ["pp_liteseg_b", "pp_liteseg_t"]

    placed = home / "weights" / "pp_liteseg_t.camvid_960x720.pdparams"  # a published file put where it belongs
    placed.parent.mkdir(parents=True)
    placed.write_bytes((fixture_dir / "weights.pdparams").read_bytes())
    model = liteseg.create_model("pp_liteseg_t.camvid_960x720", pretrained=True)
    raw = read_pdparams(placed)["seg_heads.0.conv_out.weight"]
    assert torch.equal(model.seg_heads[0].conv_out.weight.detach(), torch.from_numpy(raw))

    def offline(url, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    with pytest.raises(LitesegError, match=r"put it at \S*home/weights/pp_liteseg_b.camvid_960x720.pdparams"):
        liteseg.create_model("pp_liteseg_b.camvid_960x720", pretrained=True)
    with pytest.raises(LitesegError, match=r"did you mean 'pp_liteseg_t.camvid'"):
        liteseg.create_model("pp_liteseg_t.camvd", pretrained=True)
    with pytest.raises(ValueError, match="not both"):
        liteseg.create_model("pp_liteseg_t", pretrained=True, weights="camvid")
