"""``ResultWriter``: the bytes main's three writers produced, for every kind, and videos published whole or not at all.

The golden files in ``writer_golden/`` were written by main at 19b2b4c (``segmenter.write_output``, the CLI's
Cityscapes-id writer and legend, ``serve.codecs``) from the results in ``writer_inputs.py``; each is also checked
against an independent reference (the input labels, the palette, the Cityscapes id table). Then the writer's own
rules: default names, options, the 8/16-bit label PNG switch, and videos (the measured rate with a faked clock).
"""
from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from liteseg.errors import LitesegError, WriteError
from liteseg.inference.output_encoding import cityscapes_ids, encode, labels_png
from liteseg.inference.result_writer import ResultWriter, default_name
from liteseg.inference import video_writer
from liteseg.inference.segmenter import SegResult
from liteseg.inference.video_writer import MeasuredRateVideo, VideoWriter
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


def _named(source: str) -> str:
    return default_name(SegResult(np.zeros((1, 1), np.uint8), ["a"], [[0, 0, 0]], source=source))


def test_default_names_are_the_stem_or_video_and_six_digit_frame():
    assert _named("data/street.png") == "street"
    assert _named("videos/clip.mp4#12") == "clip/000012"
    assert _named("clip.mp4#1234567") == "clip/1234567"
    assert _named("takes/take#2.mp4#12") == "take#2/000012"  # the frame number follows the last '#'
    assert _named("odd#name.png") == "odd#name"  # not a frame number: the stem of the whole name
    assert _named("#12") == "#12"  # no video before the '#'
    assert _named("") == "result"


def test_writer_options_alpha_range_overwrite_and_the_flat_layout(tmp_path):
    cam = camvid_result()
    for alpha in (0.0, 1.0):
        assert ResultWriter(tmp_path, alpha=alpha).alpha == alpha
    for alpha in (-0.01, 1.01):
        with pytest.raises(ValueError, match=rf"alpha must be in \[0, 1\], got {alpha}"):
            ResultWriter(tmp_path, alpha=alpha)
    flat = ResultWriter(tmp_path / "flat", ["labels", "probs"], folders=False)
    expected = {"labels": tmp_path / "flat" / "street_labels.png", "probs": tmp_path / "flat" / "street_probs.npy"}
    assert flat.write(cam) == expected  # the name from the source
    assert flat.write(replace(cam, labels=cam.labels[::-1].copy())) == expected  # overwrites by default
    np.testing.assert_array_equal(_decode(expected["labels"].read_bytes()), cam.labels[::-1])
    with pytest.raises(FileExistsError, match="already exists"):
        ResultWriter(tmp_path / "flat", ["labels"], overwrite=False, folders=False).write(cam)
    assert ResultWriter(tmp_path).write(cam, "a/b") == {  # the default kinds, in predict's layout
        "labels": tmp_path / "labels" / "a/b.png", "color": tmp_path / "color" / "a/b.png",
        "overlay": tmp_path / "overlay" / "a/b.jpg"}
    assert ResultWriter(tmp_path).write_legend(cam.class_names, cam.palette) == tmp_path / "legend.png"


def test_encoding_defaults_and_its_own_kind_check():
    cam = camvid_result()
    assert encode("overlay", cam) == (GOLDEN / "camvid_overlay.jpg").read_bytes()  # alpha 0.5
    with pytest.raises(LitesegError, match="19-class Cityscapes model; this one has 11"):
        encode("label_ids", cam)
    assert encode("labels", cam) == (GOLDEN / "camvid_labels.png").read_bytes()
    with pytest.raises(LitesegError, match=re.escape(
            "no probabilities computed; create the Segmenter with probs=True (predict: --save-probs)")):
        encode("probs", cityscapes_result())


@pytest.mark.parametrize("top, bits", [(255, 8), (256, 16)])
def test_label_pngs_are_8_bit_up_to_id_255_then_16_bit(top, bits):
    labels = np.array([[0, 7], [top, 1]], np.int64)
    data = labels_png(labels)
    assert data[24] == bits  # the IHDR bit depth
    np.testing.assert_array_equal(_decode(data), labels)


def test_cityscapes_ids_outside_the_train_ids_are_unlabeled_not_an_error():
    """Train ids 0 and 18 are labelIds 7 (road) and 33 (bicycle); 19, 255 (ignore) and -1 are 0 (unlabeled), not
    bicycle as a clamp gave."""
    ids = cityscapes_ids(np.array([[0, 18, -1], [19, 255, 5]]))
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, [[7, 33, 0], [0, 0, 17]])


class _FakeVideo:
    """Records close/abort; ``fail`` makes close raise."""

    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    def close(self) -> None:
        self.log.append(f"close {self.name}")
        if self.fail:
            raise OSError(f"{self.name} failed")

    def abort(self) -> None:
        self.log.append(f"abort {self.name}")


def test_close_finishes_every_video_then_raises_the_first_failure(tmp_path):
    log: list[str] = []
    writer = ResultWriter(tmp_path)
    writer.videos = {n: _FakeVideo(log, n, fail=n in "ac") for n in "abc"}
    with pytest.raises(OSError, match="a failed"):
        writer.close()
    assert log == ["close a", "close b", "close c"]
    log.clear()
    with ResultWriter(tmp_path) as writer:  # a block that ends normally publishes
        writer.videos = {n: _FakeVideo(log, n) for n in "ab"}
    assert log == ["close a", "close b"]
    log.clear()
    with pytest.raises(KeyError):
        with ResultWriter(tmp_path) as writer:  # one that raises removes them all
            writer.videos = {n: _FakeVideo(log, n) for n in "ab"}
            raise KeyError("x")
    assert log == ["abort a", "abort b"]


def test_a_video_frame_needs_the_image_and_shows_the_overlay_given(tmp_path):
    cv2 = require_module("cv2")
    writer = ResultWriter(tmp_path)
    with pytest.raises(ValueError, match="^this result keeps no input image; call the Segmenter with keep_image=True$"):
        writer.add_video_frame("clip", cityscapes_result(), fps=5.0, overlay=np.zeros((32, 48, 3), np.uint8))
    assert writer.videos == {}
    cam = camvid_result()
    red = np.zeros_like(cam.image)
    red[..., 0] = 255
    with ResultWriter(tmp_path) as writer:
        writer.add_video_frame("clip", cam, fps=5.0, overlay=red)
        writer.add_video_frame("clip", cam, fps=5.0, overlay=red)
        writer.add_video_frame("live", cam, overlay=red)  # no rate: measured
        assert isinstance(writer.videos["live"], MeasuredRateVideo) and isinstance(writer.videos["clip"], VideoWriter)
    assert sorted(p.name for p in (tmp_path / "video").iterdir()) == ["clip.mp4", "live.mp4"]
    capture = cv2.VideoCapture(str(tmp_path / "video" / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == 5.0
    frame = capture.read()[1][:, :, ::-1].astype(int)
    capture.release()
    assert frame.shape == (24, 64, 3)
    assert np.abs(frame[:, :32] - cam.image).mean() < 20  # input (mp4v of a noisy image) | the red overlay given
    np.testing.assert_allclose(frame[4:20, 38:58].mean(axis=(0, 1)), [255, 0, 0], atol=25)


class _Recorder:
    """Stands in for ``VideoWriter``: records what it is given."""

    def __init__(self, log: list, path: Path, fps: float) -> None:
        self.log, self.published = log, False
        log.append(("open", path.name, fps))

    def write(self, rgb: np.ndarray) -> None:
        self.log.append(int(rgb[0, 0, 0]))

    def close(self) -> None:
        self.published = True
        self.log.append("close")

    def abort(self) -> None:
        self.log.append("abort")


def _live(tmp_path, monkeypatch, times: list[float], frames: int) -> tuple[MeasuredRateVideo, list]:
    log: list = []
    clock = iter(times)
    monkeypatch.setattr(video_writer, "VideoWriter", lambda path, fps: _Recorder(log, path, fps))
    monkeypatch.setattr(video_writer, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    video = MeasuredRateVideo(tmp_path / "live.mp4")
    for i in range(frames):
        video.write(np.full((2, 2, 3), i, np.uint8))
    return video, log


def test_a_live_video_plays_at_the_rate_measured_over_frames_2_to_8(tmp_path, monkeypatch):
    """The first call warms the model up, so its interval is left out; the held frames go first, in order."""
    times = [0.0, 5.0, 5.25, 5.5, 5.75, 6.0, 6.25, 6.5]  # 0.25 s per frame after the first
    video, log = _live(tmp_path, monkeypatch, times, 10)
    assert log == [("open", "live.mp4", 4.0), *range(10)] and video.fps == 4.0 and video.frames == 10
    assert not video.published
    video.close()
    assert video.published and log[-1] == "close"


@pytest.mark.parametrize("times, fps", [([0.0], 1.0), ([0.0, 0.3], 3.33), ([0.0, 10.0, 10.5], 2.0)],
                         ids=["one", "two", "three"])
def test_a_short_live_video_is_published_at_the_rate_its_few_frames_give(times, fps, tmp_path, monkeypatch):
    """Fewer than 8 frames: the rate of all of them (two), without the first (three); one frame: 1 FPS."""
    video, log = _live(tmp_path, monkeypatch, times, len(times))
    assert log == [] and video.fps == 0.0 and video.frames == len(times)  # held until the rate is known
    video.close()
    assert log == [("open", "live.mp4", fps), *range(len(times)), "close"] and video.published


def test_an_aborted_live_video_opens_nothing_or_is_removed(tmp_path, monkeypatch):
    held, log = _live(tmp_path, monkeypatch, [0.0, 1.0], 2)
    held.abort()
    held.close()
    assert log == [] and not held.published
    video, log = _live(tmp_path, monkeypatch, [float(t) for t in range(9)], 9)
    video.abort()
    assert log[-1] == "abort"


def test_a_video_that_reads_back_short_is_not_published(tmp_path, monkeypatch):
    require_module("cv2")
    assert VideoWriter(tmp_path / "x.mp4", 0).fps == 25.0  # unknown rate
    VideoWriter(tmp_path / "none.mp4", 5.0).close()  # no frame: nothing to publish
    monkeypatch.setattr(video_writer, "video_frame_count", lambda path: 1)
    video = VideoWriter(tmp_path / "short.mp4", 5.0)
    for _ in range(2):
        video.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(WriteError, match="reads back 1 of 2 frames"):
        video.close()
    assert not video.published and list(tmp_path.iterdir()) == []


def test_an_aborted_video_leaves_no_file_and_a_closed_one_is_published(tmp_path):
    """``abort`` removes the temporary file (nothing under the target name, nothing beside it); ``close`` publishes
    the frames under the target name."""
    require_module("cv2")
    frames = [np.full((16, 24, 3), v, np.uint8) for v in (0, 128, 255)]
    aborted = VideoWriter(tmp_path / "failed.mp4", 5.0)
    for frame in frames:
        aborted.write(frame)
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file, while frames come
    aborted.abort()
    assert list(tmp_path.iterdir()) == [] and not aborted.published
    done = VideoWriter(tmp_path / "done.mp4", 5.0)
    for frame in frames:
        done.write(frame)
    done.close()
    assert done.published and [p.name for p in tmp_path.iterdir()] == ["done.mp4"]
    assert video_writer.video_frame_count(tmp_path / "done.mp4") == 3
