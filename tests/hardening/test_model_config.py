"""Model-file configs are checked before anything is built: a FormatError naming the key, never an allocation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from liteseg.cli.main import main

ASSET = Path(__file__).resolve().parents[2] / "src" / "liteseg" / "assets" / "pp_liteseg_t_camvid.safetensors"


def _model_file(path: Path, config: dict) -> Path:
    """A 204-byte-style safetensors file: one tiny tensor and liteseg metadata with ``config``."""
    meta = {"format_version": 1, "arch": "pp_liteseg_t", "config": config, "meta": {}}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"liteseg": json.dumps(meta)})
    return path


@pytest.mark.parametrize("config, key", [
    ({"num_classes": -5}, "config.num_classes"),
    ({"num_classes": 11, "colour": 3}, "config.colour"),
    ({"num_classes": 11, "backbone_kwargs": {"base": 100000}}, "config.backbone_kwargs.base"),
    ({"num_classes": 11, "arm_out_chs": "wide"}, "config.arm_out_chs"),
    ({"num_classes": 11, "backbone": "ResNet"}, "config.backbone"),
])
def test_bad_config_values_name_the_key(tmp_path, capsys, config, key):
    assert main(["info", str(_model_file(tmp_path / "bad.safetensors", config))]) == 2
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err


def test_config_is_checked_against_the_tensor_shapes(tmp_path, capsys):
    from safetensors import safe_open

    with safe_open(str(ASSET), framework="pt") as f:
        meta = json.loads(f.metadata()["liteseg"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"]["num_classes"] = 12  # the weights have 11 classifiers
    path = tmp_path / "lying.safetensors"
    save_file(state, str(path), metadata={"liteseg": json.dumps(meta)})
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "config.num_classes says 12" in err and "seg_heads.0.conv_out.weight has 11" in err
