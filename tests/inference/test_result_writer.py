"""``ResultWriter``: the bytes main's three writers produced, for every kind, and videos published whole or not at all.

The golden files in ``writer_golden/`` were written by main at 19b2b4c (``segmenter.write_output``, the CLI's
Cityscapes-id writer and legend, ``serve.codecs``) from the results in ``writer_inputs.py``; each is also checked
against an independent reference (the input labels, the palette, the Cityscapes id table).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liteseg.errors import LitesegError
from liteseg.inference.result_writer import ResultWriter
from liteseg.serve.codecs import result_png

from ..conftest import require_module
from .writer_inputs import camvid_result, cityscapes_result, many_class_result

GOLDEN = Path(__file__).parent / "writer_golden"
# Cityscapes trainId -> labelId, from the Cityscapes scripts' labels.py (independent of liteseg.palettes)
LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("make, kind, alpha, golden", [
    (camvid_result, "labels", 0.5, "camvid_labels.png"), (camvid_result, "color", 0.5, "camvid_color.png"),
    (camvid_result, "overlay", 0.5, "camvid_overlay.jpg"), (camvid_result, "overlay", 0.3, "camvid_overlay_a03.jpg"),
    (camvid_result, "probs", 0.5, "camvid_probs.npy"), (cityscapes_result, "label_ids", 0.5,
                                                        "cityscapes_label_ids.png"),
    (many_class_result, "color", 0.5, "many_color.png"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_every_kind_has_the_bytes_main_wrote(make, kind, alpha, golden, tmp_path):
    result = make()
    expected = (GOLDEN / golden).read_bytes()
    folders = ResultWriter(tmp_path / "cli", [kind], alpha=alpha).write(result, "seq/0001")  # predict's layout
    assert folders[kind] == tmp_path / "cli" / kind / f"seq/0001{Path(golden).suffix}"
    assert folders[kind].read_bytes() == expected
    saved = result.save(tmp_path / "api", kinds=[kind], alpha=alpha)  # the Python API's layout
    assert saved[kind].name == f"{Path(result.source).stem}_{kind}{Path(golden).suffix}"
    assert saved[kind].read_bytes() == expected


def test_the_golden_files_hold_the_results(tmp_path):
    """The goldens against independent references, so that 'same bytes' means right bytes."""
    cam, city = camvid_result(), cityscapes_result()
    np.testing.assert_array_equal(_decode((GOLDEN / "camvid_labels.png").read_bytes()), cam.labels)
    colours = Image.open(GOLDEN / "camvid_color.png").convert("RGB")
    np.testing.assert_array_equal(np.asarray(colours), np.asarray(cam.palette, np.uint8)[cam.labels])
    np.testing.assert_array_equal(_decode((GOLDEN / "cityscapes_label_ids.png").read_bytes()),
                                  np.asarray(LABEL_IDS)[city.labels])
    np.testing.assert_array_equal(np.load(GOLDEN / "camvid_probs.npy"), cam.probs.astype(np.float16))
    colour = np.asarray(cam.palette, np.float32)[cam.labels]
    for golden, alpha, other in (("camvid_overlay.jpg", 0.5, 0.3), ("camvid_overlay_a03.jpg", 0.3, 0.5)):
        found = _decode((GOLDEN / golden).read_bytes()).astype(np.float32)
        error = {a: np.abs(found - ((1 - a) * cam.image + a * colour)).mean() for a in (alpha, other)}
        assert error[alpha] < 11 and error[alpha] < error[other] - 4, error  # JPEG of a noisy 24x32 image


def test_legend_and_server_pngs_use_the_one_png_setting(tmp_path):
    cam, many = camvid_result(), many_class_result()
    legend = ResultWriter(tmp_path).write_legend(cam.class_names, cam.palette)
    assert legend.read_bytes() == (GOLDEN / "camvid_legend.png").read_bytes()
    labels_file = ResultWriter(tmp_path, ["labels"]).write(cam, "x")["labels"]
    assert result_png(cam, "labels", 0.5) == labels_file.read_bytes()  # the server sends what predict writes
    for fmt in ("labels", "color", "overlay"):  # the server's answers decode to the pixels main sent
        np.testing.assert_array_equal(_decode(result_png(cam, fmt, 0.5)),
                                      _decode((GOLDEN / f"serve_camvid_{fmt}.png").read_bytes()))
    np.testing.assert_array_equal(_decode(result_png(many, "labels", 0.5)), many.labels)


def test_more_than_256_classes_give_a_16_bit_label_png(tmp_path):
    """main's file writer could not write these (PIL: 'cannot write mode I as PNG'); the server could."""
    many = many_class_result()
    path = ResultWriter(tmp_path, ["labels"]).write(many, "many")["labels"]
    np.testing.assert_array_equal(_decode(path.read_bytes()), many.labels)
    np.testing.assert_array_equal(_decode(path.read_bytes()),
                                  _decode((GOLDEN / "serve_many_labels.png").read_bytes()))


def test_bad_kinds_are_clear_errors_before_anything_is_written(tmp_path):
    with pytest.raises(LitesegError, match="19-class Cityscapes model; this one has 11"):
        ResultWriter(tmp_path, ["labels", "label_ids"], num_classes=11)
    with pytest.raises(LitesegError, match="19-class Cityscapes model; this one has 11"):
        camvid_result().save(tmp_path, kinds=["label_ids"])
    with pytest.raises(LitesegError, match="unknown output kind.*'depth'.*choose from labels, color"):
        ResultWriter(tmp_path, ["depth"])
    no_probs = cityscapes_result()
    with pytest.raises(LitesegError, match="probs=True"):
        no_probs.save(tmp_path, kinds=["probs"])
    assert list(tmp_path.iterdir()) == []


def test_a_video_is_published_whole_or_not_at_all(tmp_path):
    cv2 = require_module("cv2")
    cam = camvid_result()
    with ResultWriter(tmp_path / "ok", ["labels"]) as writer:
        for _ in range(3):
            writer.add_video_frame("clip", cam, fps=5.0)
    capture = cv2.VideoCapture(str(tmp_path / "ok" / "video" / "clip.mp4"))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    assert len(frames) == 3 and frames[0].shape == (24, 64, 3)  # input | overlay
    assert writer.videos["clip"].published
    with pytest.raises(RuntimeError, match="model failed"):
        with ResultWriter(tmp_path / "bad", ["labels"]) as writer:
            writer.add_video_frame("clip", cam, fps=5.0)
            writer.add_video_frame("live", cam)  # measured rate: frames held, then dropped
            raise RuntimeError("model failed")
    assert [p.name for p in (tmp_path / "bad").rglob("*")] == ["video"]  # no mp4, no temporary file


def test_predict_that_fails_mid_video_publishes_no_video(tmp_path, monkeypatch, capsys):
    """main's predict closed (published) its videos in a ``finally``, so a failed run left a partial .mp4."""
    cv2 = require_module("cv2")
    import liteseg
    from liteseg.cli.main import main
    from liteseg.formats.native import save_native
    from liteseg.inference.segmenter import Segmenter

    model = liteseg.create_model("pp_liteseg_t", num_classes=4)
    save_native(tmp_path / "m.safetensors", model.state_dict(), {"arch": "pp_liteseg_t", "config": model.config,
                                                                  "meta": {}})
    video = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 24))
    for i in range(4):
        video.write(np.full((24, 32, 3), 40 * i, np.uint8))
    video.release()
    forward, calls = Segmenter.forward, []

    def failing_forward(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise LitesegError("the model failed on frame 3")
        return forward(self, batch)

    monkeypatch.setattr(Segmenter, "forward", failing_forward)
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "clip.avi"), "--model", str(tmp_path / "m.safetensors"), "-o", str(out),
                 "--save", "labels", "--save-video"]) == 2
    assert "frame 3" in capsys.readouterr().err
    assert len(list((out / "labels" / "clip").iterdir())) == 2  # the frames before the failure are kept
    assert not list((out / "video").glob("*"))  # but no video, and no temporary file
