"""Config schema: YAML + _base_ + overrides, clear errors, and the shipped PaddleSeg-equivalent configs."""
from __future__ import annotations

from pathlib import Path

import pytest

from liteseg.cli.main import main
from liteseg.config import ConfigError, config_from_dict, load_config, valid_keys
from liteseg.data.transforms import ResizeStepScaling

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_overrides_and_types():
    cfg = load_config(None, ["data.train=camvid:/d", "train.iters=5000", "augment.crop_size=[64, 32]",
                             "optimizer.lr=1e-3", "train.tensorboard=true", "model.pretrained=null"])
    assert cfg.train.iters == 5000 and cfg.augment.crop_size == [64, 32]
    assert cfg.optimizer.lr == 0.001 and cfg.train.tensorboard is True and cfg.model.pretrained is None
    assert "train.iters" in valid_keys() and "loss.min_kept" in valid_keys()


@pytest.mark.parametrize("min_kept", [0, -1])
def test_min_kept_at_or_below_zero_is_accepted_as_paddleseg_does(min_kept):
    """PaddleSeg does not validate OhemCrossEntropyLoss.min_kept; <= 0 means plain cross-entropy (test_losses)."""
    assert load_config(None, ["data.train=camvid:/d", f"loss.min_kept={min_kept}"]).loss.min_kept == min_kept


@pytest.mark.parametrize("override, message", [
    ("train.iterz=5", "unknown key train.iterz; did you mean 'train.iters'?"),
    ("train.zzz=5", "unknown key train.zzz; valid keys in train: iters, seed"),
    ("trian.iters=5", "unknown section 'trian'; did you mean 'train'?"),
    ("train.iters=many", "train.iters must be int, got 'many'"),
    ("augment.crop_size=512", "augment.crop_size must be a list"),
    ("train.iters", "must look like section.key=value"),
    ("iters=5", "the key must be section.key"),
    ("loss.type=focal", "loss.type must be ohem or ce, got 'focal'$"),
    ("loss.type=ohme", "loss.type must be ohem or ce, got 'ohme'; did you mean 'ohem'?"),
    ("scheduler.horizon=paddle", "scheduler.horizon must be total or after_warmup"),
    ("train.iters=0", "train.iters must be > 0"),
])
def test_bad_overrides_give_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(None, ["data.train=camvid:/d", override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  iters: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("train:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key train.lr; did you mean 'optimizer.lr'\?"):
        load_config(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("_base_: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(loop)


def test_base_inheritance_and_override_order(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  train: camvid:/a\n  batch_size: 3\ntrain:\n  iters: 100\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\ntrain:\n  iters: 200\n  seed: 7\nscheduler:\n  warmup_iters: 10\n")
    cfg = load_config(tmp_path / "child.yaml", ["train.seed=9"])
    assert (cfg.data.train, cfg.data.batch_size, cfg.train.iters, cfg.train.seed) == ("camvid:/a", 3, 200, 9)


@pytest.mark.parametrize("name, model, scales, val_scale", [
    ("pp_liteseg_stdc1_cityscapes_1024x512_scale0.5_160k", "pp_liteseg_t", 12, 0.5),
    ("pp_liteseg_stdc1_cityscapes_1024x512_scale0.75_160k", "pp_liteseg_t", 12, 0.75),
    ("pp_liteseg_stdc1_cityscapes_1024x512_scale1.0_160k", "pp_liteseg_t", 7, 1.0),
    ("pp_liteseg_stdc2_cityscapes_1024x512_scale0.5_160k", "pp_liteseg_b", 12, 0.5),
    ("pp_liteseg_stdc2_cityscapes_1024x512_scale0.75_160k", "pp_liteseg_b", 12, 0.75),
    ("pp_liteseg_stdc2_cityscapes_1024x512_scale1.0_160k", "pp_liteseg_b", 7, 1.0),
])
def test_cityscapes_configs_match_paddleseg(name, model, scales, val_scale):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.name == model and cfg.model.num_classes == 19 and cfg.data.val_scale == val_scale
    assert (cfg.data.batch_size, cfg.train.iters, cfg.optimizer.lr, cfg.optimizer.weight_decay) == (4, 160000, 0.005, 5e-4)
    assert (cfg.scheduler.warmup_iters, cfg.scheduler.warmup_start_lr) == (1000, 1e-5)
    assert (cfg.loss.type, cfg.loss.thresh, cfg.loss.min_kept, cfg.loss.coefs) == ("ohem", 0.7, 130000, [1, 1, 1])
    assert cfg.augment.crop_size == [1024, 512]
    a = cfg.augment
    assert len(ResizeStepScaling(a.min_scale_factor, a.max_scale_factor, a.scale_step_size).factors()) == scales


@pytest.mark.parametrize("name, model", [("pp_liteseg_stdc1_camvid_960x720_10k", "pp_liteseg_t"),
                                         ("pp_liteseg_stdc2_camvid_960x720_10k", "pp_liteseg_b")])
def test_camvid_configs_match_paddleseg(name, model):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.name == model and cfg.model.num_classes == 11
    assert (cfg.data.batch_size, cfg.train.iters, cfg.optimizer.lr, cfg.scheduler.warmup_iters) == (6, 10000, 0.01, 200)
    assert (cfg.loss.min_kept, cfg.augment.crop_size) == (250000, [960, 720])
    a = cfg.augment
    assert len(ResizeStepScaling(a.min_scale_factor, a.max_scale_factor, a.scale_step_size).factors()) == 9


def test_other_shipped_configs_load():
    assert load_config(CONFIGS / "custom_dataset_example.yaml").data.class_names == ["background", "road", "car"]
    assert load_config(CONFIGS / "camvid_tiny.yaml").augment.crop_size == [128, 128]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_default_model_recipe_configs_match_what_was_trained(stage):
    """configs/camvid_cpu_default_stage{1,2,3}.yaml reproduce the recipe recorded in the shipped model's metadata."""
    import liteseg

    recorded = liteseg.load("camvid").meta.extra["training_stages"][stage - 1]["config"]
    trained = config_from_dict(recorded, "metadata").to_dict()  # keys added since then take their defaults
    cfg = load_config(CONFIGS / f"camvid_cpu_default_stage{stage}.yaml").to_dict()
    for section in ("augment", "optimizer", "scheduler", "loss"):
        assert cfg[section] == trained[section], section
    for key in ("iters", "ema_decay", "seed"):
        assert cfg["train"][key] == trained["train"][key], key
    assert cfg["data"]["batch_size"] == trained["data"]["batch_size"]
    assert bool(cfg["model"]["pretrained"]) == (stage > 1)


def test_cli_reports_config_errors(capsys):
    assert main(["train", "-c", str(CONFIGS / "camvid_tiny.yaml"), "train.itres=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: command line: unknown key train.itres") and "Traceback" not in err
