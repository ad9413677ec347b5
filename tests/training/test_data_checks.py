"""Training on your own data: the data check (CLI and at the start of train), 0/255 masks stopped with the
explanation and fixed by the remedy it names, class_weights=auto on a rare class, per-class IoU, final model,
licence and palette carried into the fine-tuned model."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.config import load_config
from liteseg.meta import ModelMeta
from liteseg.training.train_log import read_csv
from liteseg.training.trainer import Trainer

from .train_helpers import TINY, overrides

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (96, 64)  # W, H


def _write(root: Path, masks: list[np.ndarray], suffixes: list[str] | None = None, rgb: int = -1) -> str:
    """A list dataset: noise images with brighter objects, the given masks (mask ``rgb`` stored as grey RGB)."""
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i, mask in enumerate(masks):
        image = rng.integers(0, 60, (*mask.shape, 3), dtype=np.uint8) + (mask[..., None] % 255 * 90).astype(np.uint8)
        Image.fromarray(image).save(root / "img" / f"{i}.png")
        suffix = suffixes[i] if suffixes else ".png"
        stored = np.repeat(mask[..., None], 3, axis=2) if i == rgb else mask
        Image.fromarray(stored).save(root / f"{i}{suffix}", quality=90)
        lines.append(f"img/{i}.png {i}{suffix}")
    (root / "train.txt").write_text("\n".join(lines))
    return f"list:{root / 'train.txt'}"


def _object_masks(n: int, fg: int = 1) -> list[np.ndarray]:
    masks = []
    for i in range(n):
        m = np.zeros(SIZE[::-1], np.uint8)
        m[10 + i:40 + i, 20:60] = fg
        masks.append(m)
    return masks


def test_zero_255_masks_stop_training_and_the_named_remedy_trains(tmp_path, capsys):
    data = _write(tmp_path / "data", _object_masks(4, fg=255))
    run = tmp_path / "run"
    common = {"data.class_names": "[bg, obj]", "model.num_classes": "null", "loss.type": "ce",
              "scheduler.warmup_iters": 1}
    assert main(["train", "-c", str(TINY), "--no-progress", *overrides(data, run, iters=1, **common)]) == 2
    err = capsys.readouterr().err
    assert "training stopped" in err and "[foreground_ignored]" in err and "only the values 0 and 255" in err
    assert "data.label_map={255: 1}" in err and "data.allow=[foreground_ignored]" in err
    assert not (run / "checkpoints").exists()

    # the remedy the message names, from weights that carry a licence; evaluation off; a palette in the config
    start = tmp_path / "start.pt"
    torch.save({"model": liteseg.create_model("pp_liteseg_t", num_classes=2).state_dict(),
                "meta": ModelMeta("pp_liteseg_t", 2, license="CC BY-NC 4.0").to_dict()}, start)
    assert main(["train", "-c", str(TINY), "--no-progress",
                 *overrides(data, run, iters=1, **common, **{"data.label_map": "{255: 1}", "model.pretrained": start,
                                                             "data.palette": "[[0,0,0],[250,20,10]]"})]) == 0
    report = (run / "data_check.txt").read_text()
    assert re.search(r"1 obj\s+4800 ", report) and "no problems found" in report  # 4 x 30 x 40 object pixels
    assert (run / "train_batch0.jpg").is_file()
    model, meta = liteseg.load(run / "final_model.pt")  # written without any evaluation
    assert meta.license == "CC BY-NC 4.0" and meta.palette == [[0, 0, 0], [250, 20, 10]]
    assert meta.class_names == ["bg", "obj"] and not (run / "best_model.pt").exists()
    # custom data: overlays leave the background (class 0) uncoloured, and colour the other classes
    result = liteseg.Segmenter(model, meta=meta)(np.asarray(Image.open(tmp_path / "data" / "img" / "0.png")))
    result.labels[:, :48], result.labels[:, 48:] = 1, 0
    blend, image = result.overlay(0.5), result.image
    assert np.array_equal(blend[:, 48:], image[:, 48:]) and (blend[:, :48, 0] != image[:, :48, 0]).mean() > 0.9


def test_class_weights_auto_on_a_rare_class_and_per_class_iou(tmp_path, caplog):
    masks = _object_masks(4)
    masks[0][50:53, 5:8] = 2  # "rare": 9 of 24576 pixels (0.04%)
    data = _write(tmp_path / "data", masks)
    out = tmp_path / "run"
    cfg = load_config(TINY, overrides(data, out, iters=1, **{
        "data.class_names": "[bg, obj, rare]", "model.num_classes": "null", "loss.type": "ce",
        "loss.class_weights": "auto", "data.val": data, "train.eval_interval": 1, "scheduler.warmup_iters": 1}))
    caplog.set_level(logging.INFO)
    trainer = Trainer(cfg, progress=False)
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=3).astype(np.float64)
    share = counts / counts.sum()
    expected = 1 / np.log(1.02 + share)  # the documented formula, normalised to a pixel-weighted mean of 1
    expected /= (share * expected).sum()
    torch.testing.assert_close(trainer.loss_fn.loss.weight, torch.tensor(expected, dtype=torch.float32))
    assert expected[2] > 20 * expected[0]
    assert "w_c = 1/ln(1.02 + p_c)" in caplog.text and f"rare {expected[2]:.3g}" in caplog.text

    trainer.fit()
    row = read_csv(out / "eval_log.csv")[-1]
    assert "IoU per class: bg" in caplog.text
    # the logged per-class IoU against an independent computation with the final weights' own argmax
    model, meta = liteseg.load(out / "final_model.pt")
    inter, union = np.zeros(3), np.zeros(3)
    for i, mask in enumerate(masks):
        image = np.asarray(Image.open(tmp_path / "data" / "img" / f"{i}.png"), dtype=np.float32) / 255
        x = torch.from_numpy((image - 0.5) / 0.5).permute(2, 0, 1)[None]
        with torch.no_grad():
            pred = model(x).argmax(1)[0].numpy()
        for c in range(3):
            inter[c] += np.sum((pred == c) & (mask == c))
            union[c] += np.sum((pred == c) | (mask == c))
    for c, name in enumerate(["bg", "obj", "rare"]):
        assert row[f"iou_{name}"] == pytest.approx(inter[c] / union[c] if union[c] else 0.0, abs=1e-4)


def test_data_check_reports_histogram_and_mistakes(tmp_path, capsys):
    masks = _object_masks(3)
    masks[0][:5] = 255  # ignored rows
    masks[2][:] = 0  # stored as JPEG: lossy, refused
    data = _write(tmp_path / "data", masks, [".png", ".png", ".jpg"], rgb=1)
    out = tmp_path / "check"
    assert main(["data", "check", data, "--class-names", "bg,obj,never", "-o", str(out)]) == 1
    text = capsys.readouterr().out
    decoded = [np.asarray(Image.open(tmp_path / "data" / f"{i}{s}").convert("L")) for i, s in
               enumerate([".png", ".png", ".jpg"])]
    counts = np.bincount(np.concatenate([m.ravel() for m in decoded]), minlength=256)
    total = counts.sum()
    for c, name in enumerate(["bg", "obj", "never"]):
        images = sum(int((m == c).any()) for m in decoded)
        assert re.search(rf"{c} {name}\s+{counts[c]}\s+{100 * counts[c] / total:.2f}%\s+{images}\n", text), text
    assert re.search(rf"ignored\s+{counts[255]}\s+{100 * counts[255] / total:.2f}%", text)
    assert "sizes (WxH): 96x64 (3)" in text
    assert "ERROR [jpeg_masks]: 1 masks are JPEG files" in text and "2.jpg" in text
    assert "warning [grey_rgb_masks]" in text and "1.png" in text and "warning [empty_classes]" in text
    assert "2 never" in text.split("[empty_classes]")[1]
    saved = json.loads((out / "report.json").read_text())
    assert [c["pixels"] for c in saved["classes"]] == counts[:3].tolist()
    assert (out / "samples.jpg").is_file() and (out / "labels.png").is_file()
    # the same data trains once the lossy masks are explicitly allowed (the check is the one train runs)
    assert main(["data", "check", data, "--class-names", "bg,obj,never", "--allow", "jpeg_masks"]) == 0
