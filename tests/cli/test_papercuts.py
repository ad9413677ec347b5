"""What a new user sees on the command line (issue 25): Ctrl-C summaries, warnings, file names, suggestions."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from liteseg.cli.main import main
from liteseg.inference.segmenter import Segmenter

from ..conftest import require_module
from .test_predict import model_file  # noqa: F401 - the fixture: a random 4-class PP-LiteSeg-T file


def _images(root, n: int):
    root.mkdir()
    rng = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(rng.randint(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_ctrl_c_in_predict_prints_what_was_written_where_and_the_legend(tmp_path, model_file, capsys, monkeypatch):
    forward, calls = Segmenter.forward, []

    def forward_then_ctrl_c(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return forward(self, batch)

    monkeypatch.setattr(Segmenter, "forward", forward_then_ctrl_c)
    out = tmp_path / "out"
    assert main(["predict", str(_images(tmp_path / "imgs", 5)), "--model", str(model_file), "-o", str(out)]) == 130
    text = capsys.readouterr().out
    assert f"interrupted (Ctrl-C): 2 image(s) segmented, 0 failed" in text and str(out) in text
    assert f"legend: {out / 'legend.png'}" in text and (out / "legend.png").is_file()
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["0.png", "1.png"]


def test_palette_and_cmyk_inputs_warn_and_an_unreadable_file_is_named_on_stderr(tmp_path, model_file, capsys):
    rgb = np.random.RandomState(1).randint(0, 255, (24, 32, 3), dtype=np.uint8)
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(rgb).quantize(colors=8).save(root / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.tiff")
    (root / "notes.png").write_bytes(b"these are not pixels")
    assert main(["predict", str(root), "--model", str(model_file), "-o", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "palette.png: palette image converted to RGB" in captured.err
    assert "cmyk.tiff: CMYK image converted to RGB" in captured.err
    assert f"skipped: {root / 'notes.png'}: not a readable image" in captured.err
    assert "BytesIO" not in captured.err + captured.out and "skipped" not in captured.out


def test_video_summary_names_the_side_by_side_file(tmp_path, model_file, capsys):
    cv2 = require_module("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(2):
        writer.write(np.full((24, 32, 3), i * 60, np.uint8))
    writer.release()
    out = tmp_path / "o"
    assert main(["predict", str(path), "--model", str(model_file), "-o", str(out), "--save-video",
                 "--save", "labels"]) == 0
    assert f"side-by-side video: {out / 'video' / 'clip.mp4'}" in capsys.readouterr().out
    assert (out / "video" / "clip.mp4").stat().st_size > 0


@pytest.mark.parametrize("model,expected,absent", [
    ("pp_liteseg_t.camvd", "did you mean 'pp_liteseg_t.camvid'", "scale0.5"),
    ("pp_liteseg_t", "'pp_liteseg_t' is an architecture, not weights; its published weights: pp_liteseg_t.camvid",
     "pp_liteseg_b"),
    ("pp_litseg_b", "did you mean the weights of 'pp_liteseg_b': pp_liteseg_b.camvid_960x720", "pp_liteseg_t."),
])
def test_mistyped_weight_or_architecture_name_gets_a_suggestion(tmp_path, capsys, model, expected, absent):
    assert main(["predict", str(tmp_path), "--model", model]) == 2
    err = capsys.readouterr().err
    assert expected in err and absent not in err, err


@pytest.mark.parametrize("command", [["export", "M"], ["convert", "M"], ["quantize", "M", "--calib", "."]])
def test_cli_overwrite_errors_name_force(tmp_path, capsys, command):
    out = tmp_path / "exists.onnx"
    out.write_bytes(b"precious")
    argv = [str(tmp_path / "m.pdparams") if a == "M" else a for a in command]
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: already exists; pass --force" in err and "overwrite=True" not in err
    assert out.read_bytes() == b"precious"


def test_benchmark_defaults_to_the_shipped_model(capsys):
    assert main(["benchmark", "--shape", "1,3,32,32", "--warmup", "0", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "model: pp_liteseg_t" in out and "torch" in out


class _StubTrainer:
    """Stands in for the trainer (the test is about what the CLI says when a run is stopped)."""

    outcome: object = KeyboardInterrupt

    def __init__(self, config, resume=None, progress=True):
        self.output_dir = config.train.output_dir
        self.dist = type("Dist", (), {"is_main": True})()

    def fit(self):
        if self.outcome is KeyboardInterrupt:
            raise KeyboardInterrupt
        return self.outcome


@pytest.mark.parametrize("second_ctrl_c", [True, False])
def test_stopped_training_says_how_to_resume(tmp_path, capsys, monkeypatch, second_ctrl_c):
    from liteseg.training import trainer

    monkeypatch.setattr(_StubTrainer, "outcome", KeyboardInterrupt if second_ctrl_c else trainer.TrainResult(
        3, True, None, None, tmp_path, 1.0, 2.0))
    monkeypatch.setattr(trainer, "Trainer", _StubTrainer)
    config = "configs/camvid_tiny.yaml"
    assert main(["train", "-c", config, f"train.output_dir={tmp_path}", "--no-progress"]) == 130
    captured = capsys.readouterr()
    assert f"liteseg train -c {config} train.output_dir={tmp_path} --resume auto" in (
        captured.err if second_ctrl_c else captured.out)
