"""What a newcomer sees: the model named with its domain and size, --imgsz / --tile at work, the default marked."""
from __future__ import annotations

import numpy as np
from PIL import Image

from liteseg.cli.main import main

ABOUT = "PP-LiteSeg-T, CamVid street scenes, 11 classes, 480x360"


def test_predict_names_the_model_first_and_tiles_with_window_progress(tmp_path, capsys):
    image = tmp_path / "big.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (300, 400, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    assert main(["predict", str(image), "--imgsz", "native", "--tile", "256x256,192x192", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == f"model: {ABOUT}, the shipped default model"
    assert "windows" in captured.err and "4/4" in captured.err
    assert Image.open(out / "labels" / "big.png").size == (400, 300)
    assert main(["predict", str(image), "--imgsz", "4x"]) == 2
    assert "--imgsz '4x': expected WxH" in capsys.readouterr().err


def test_info_and_help_say_what_the_default_model_is_for(capsys):
    assert main(["info"]) == 0
    assert f"pp_liteseg_t.camvid  <- the shipped default: {ABOUT}" in capsys.readouterr().out
    assert main(["predict", "--help"]) == 0
    assert "CamVid street scenes" in capsys.readouterr().out
