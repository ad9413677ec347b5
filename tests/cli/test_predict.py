"""``liteseg predict`` end to end: images, folders, globs, lists, videos, bad files, output folders."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.formats.native import save_native

from ..conftest import randomize_, require_module


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """Randomised weights: two different images get different labels, so a label written under the wrong file
    name shows (a fresh init's logits are ~1e-9 and label most pixels alike)."""
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=4))
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": model.config, "meta": {}})
    return path


@pytest.fixture()
def images(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in ("b.png", "a.jpg", "sub/c.png"):
        Image.fromarray(rng.randint(0, 255, (36, 52, 3), dtype=np.uint8)).save(root / name)
    (root / "readme.txt").write_text("ignored: not an image suffix")
    return root


def _run(*args):
    return main(["predict", *map(str, args)])


def test_folder_recursive_sorted_with_all_outputs(images, model_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(images, "--model", model_file, "-o", out, "--save-probs", "--batch-size", "2") == 0
    for name in ("a", "b", "sub/c"):
        labels = np.asarray(Image.open(out / "labels" / f"{name}.png"))
        assert labels.shape == (36, 52) and labels.max() < 4
        assert (out / "color" / f"{name}.png").exists() and (out / "overlay" / f"{name}.jpg").exists()
        assert np.load(out / "probs" / f"{name}.npy").shape == (4, 36, 52)
    assert (out / "legend.png").exists()
    text = capsys.readouterr().out
    assert "3 image(s) segmented, 0 failed" in text and "img/s" in text


def test_labels_match_python_api(images, model_file, tmp_path):
    out = tmp_path / "out"
    assert _run(images / "a.jpg", "--model", model_file, "-o", out, "--save", "labels") == 0
    expected = liteseg.Segmenter(str(model_file))(images / "a.jpg").labels
    np.testing.assert_array_equal(np.asarray(Image.open(out / "labels" / "a.png")), expected)
    assert not (out / "overlay").exists()


def test_glob_and_list_file(images, model_file, tmp_path):
    assert _run(str(images / "*.png"), "--model", model_file, "-o", tmp_path / "g") == 0
    assert sorted(p.name for p in (tmp_path / "g" / "labels").iterdir()) == ["b.png"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"imgs/a.jpg labels/whatever.png\n# comment\n{images / 'sub' / 'c.png'}\n")
    assert _run(listing, "--model", model_file, "-o", tmp_path / "l") == 0
    assert sorted(p.name for p in (tmp_path / "l" / "labels").iterdir()) == ["a.png", "c.png"]


def test_one_bad_file_does_not_stop_the_rest(images, model_file, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert _run(images, "--model", model_file, "-o", tmp_path / "o") == 1
    captured = capsys.readouterr()
    assert "3 image(s) segmented, 1 failed" in captured.out
    assert "broken.png: not a readable image" in captured.out + captured.err


def test_existing_output_folder_and_numbered_runs(images, model_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert _run(images, "--model", model_file, "-o", out) == 2
    assert "--exist-ok" in capsys.readouterr().err
    assert _run(images, "--model", model_file, "-o", out, "--exist-ok") == 0
    assert (out / "keep.txt").read_text() == "precious"
    monkeypatch.chdir(tmp_path)
    assert _run(images / "a.jpg", "--model", model_file) == 0
    assert _run(images / "a.jpg", "--model", model_file) == 0
    assert (tmp_path / "runs/predict/exp/labels/a.png").exists()
    assert (tmp_path / "runs/predict/exp2/labels/a.png").exists()


def test_empty_folder_and_missing_source(tmp_path, model_file, capsys):
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", "--model", model_file, "-o", tmp_path / "o") == 2
    assert "holds no images" in capsys.readouterr().err
    assert _run(tmp_path / "nope.jpg", "--model", model_file, "-o", tmp_path / "o") == 2
    assert "no such file" in capsys.readouterr().err


def test_grayscale_input_warns(tmp_path, model_file, capsys):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "g.png")
    assert _run(tmp_path / "g.png", "--model", model_file, "-o", tmp_path / "o") == 0
    assert "grayscale image converted to 3 channels" in capsys.readouterr().err


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_video_frames_and_side_by_side(tmp_path, model_file, suffix, fourcc):
    cv2 = require_module("cv2")
    path = tmp_path / f"clip{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (48, 32))
    for i in range(5):
        writer.write(np.full((32, 48, 3), i * 40, np.uint8))
    writer.release()
    out = tmp_path / "o"
    assert _run(path, "--model", model_file, "-o", out, "--save-video", "--save", "labels") == 0
    frames = sorted((out / "labels" / "clip").iterdir())
    assert [f.name for f in frames] == [f"{i:06d}.png" for i in range(1, 6)]
    cap = cv2.VideoCapture(str(out / "video" / "clip.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (32, 96, 3)
    cap.release()


def test_truncated_video_reports_early_end(tmp_path, model_file, caplog):
    cv2 = require_module("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    for i in range(16):
        writer.write(np.random.RandomState(i).randint(0, 255, (32, 48, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(path))
    announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if announced < 16:
        pytest.skip("this OpenCV build does not announce the original frame count of a truncated AVI")
    assert _run(path, "--model", model_file, "-o", tmp_path / "o", "--save", "labels") == 0
    assert any("ended early" in r.getMessage() for r in caplog.records)


def test_cityscapes_ids_need_a_cityscapes_model(images, model_file, tmp_path, capsys, fixture_dir):
    assert _run(images / "a.jpg", "--model", model_file, "-o", tmp_path / "o", "--cityscapes-ids") == 2
    assert "19-class" in capsys.readouterr().err
    out = tmp_path / "cs"
    assert _run(images / "a.jpg", "--model", fixture_dir / "weights.pdparams", "-o", out, "--cityscapes-ids") == 0
    train = np.asarray(Image.open(out / "labels" / "a.png"))
    ids = np.asarray(Image.open(out / "label_ids" / "a.png"))
    lut = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33])
    np.testing.assert_array_equal(ids, lut[train])


def test_default_model_runs_without_model_flag(images, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run(images / "a.jpg", "-o", tmp_path / "o") == 0
    assert "untrained" not in capsys.readouterr().out
    labels = np.asarray(Image.open(tmp_path / "o" / "labels" / "a.png"))
    np.testing.assert_array_equal(labels, liteseg.Segmenter("camvid")(images / "a.jpg").labels)


def test_missing_shipped_weights_is_a_clear_error_not_a_random_model(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("liteseg.loading.zoo.DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    (tmp_path / "shared" / "fixtures" / "pp_liteseg_t").mkdir(parents=True)  # test data must not be hunted for
    (tmp_path / "shared" / "fixtures" / "pp_liteseg_t" / "weights.pdparams").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "shared")
    assert _run(images / "a.jpg", "-o", tmp_path / "o") == 2
    assert "shipped default model" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pipelined_predict_writes_the_same_bytes_as_the_serial_path(images, model_file, tmp_path, monkeypatch):
    from liteseg.cli import predict

    for name in ("d.png", "e.png"):  # a second image size: batches split on it
        Image.fromarray(np.random.RandomState(1).randint(0, 255, (40, 60, 3), dtype=np.uint8)).save(images / name)
    args = ("--model", model_file, "--batch-size", "2", "--save-probs")
    assert _run(images, *args, "-o", tmp_path / "pipelined") == 0
    monkeypatch.setattr(predict, "READ_AHEAD", 0)
    monkeypatch.setattr(predict, "WRITE_BEHIND", 0)
    assert _run(images, *args, "-o", tmp_path / "serial") == 0
    pipelined, serial = _tree_bytes(tmp_path / "pipelined"), _tree_bytes(tmp_path / "serial")
    assert len(pipelined) == 5 * 4 + 1 and pipelined == serial


def test_batched_label_pngs_are_each_files_own_model_argmax(images, model_file, tmp_path):
    """At --batch-size 2 (a.jpg and b.png share a batch), each file's labels against its own reference: float
    normalisation, the model on that image alone, numpy's argmax; the images' references must differ."""
    out = tmp_path / "out"
    assert _run(images, "--model", model_file, "-o", out, "--save", "labels", "--batch-size", "2") == 0
    model = liteseg.load(model_file).model.eval()
    expected = {}
    for name in ("a.jpg", "b.png", "sub/c.png"):
        rgb = np.asarray(Image.open(images / name).convert("RGB"))
        x = (rgb.astype(np.float32) / 255.0 - 0.5) / 0.5
        with torch.no_grad():
            logits = model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))
        expected[name] = logits[0].numpy().argmax(axis=0)
        labels = np.asarray(Image.open(out / "labels" / f"{name.rsplit('.', 1)[0]}.png"))
        np.testing.assert_array_equal(labels, expected[name], err_msg=name)
    assert (expected["a.jpg"] != expected["b.png"]).mean() > 0.05, "references too alike to tell files apart"


def test_predict_streams_frames_with_bounded_memory(model_file, tmp_path, monkeypatch):
    """Frames are decoded lazily and only a few are in flight, however long the source (video, huge folder)."""
    from liteseg.cli import predict
    from liteseg.inference.inputs import Frame
    from liteseg.inference.result_writer import ResultWriter

    state = {"made": 0, "in_flight": []}
    rng = np.random.RandomState(0)

    def endless_frames(source, files=None):
        for i in range(36):  # more than twice the bound below
            state["made"] += 1
            yield Frame(f"clip/{i:06d}", f"clip.mp4#{i}", rng.randint(0, 255, (24, 32, 3), dtype=np.uint8))

    write = ResultWriter.write

    def counting_write(self, result, name=None):
        state["in_flight"].append(state["made"] - int(name.split("/")[1]))
        return write(self, result, name)

    monkeypatch.setattr("liteseg.inference.inputs.list_sources", lambda source: [])  # predict imports them in run()
    monkeypatch.setattr("liteseg.inference.inputs.iter_frames", endless_frames)
    monkeypatch.setattr(ResultWriter, "write", counting_write)
    assert _run(tmp_path, "--model", model_file, "-o", tmp_path / "out", "--batch-size", "2") == 0
    assert len(state["in_flight"]) == 36 and len(list((tmp_path / "out" / "labels" / "clip").iterdir())) == 36
    # batches: read-ahead queue + the one the reader waits to queue + the one at the model + write-behind queue +
    # the one being written; frames: those batches of 2 + the next frame the batcher looked at to close a batch
    bound = (predict.READ_AHEAD + 1 + 1 + predict.WRITE_BEHIND + 1) * 2 + 1
    assert max(state["in_flight"]) <= bound, state["in_flight"]


def test_written_colours_overlay_and_probabilities_against_the_models_own_output(model_file, tmp_path):
    """Bytes on disk, decoded, against references computed here: the colour PNG is the palette at the model's
    argmax, the overlay JPEG the (1 - alpha) image + alpha colour blend (JPEG-close), the .npy float16 softmax."""
    out = tmp_path / "out"
    yy, xx = np.mgrid[0:36, 0:52]
    rgb = np.stack([yy * 7, xx * 4, (yy + xx) * 3], -1).astype(np.uint8)  # smooth: JPEG keeps it close
    Image.fromarray(rgb).save(tmp_path / "b.png")
    assert _run(tmp_path / "b.png", "--model", model_file, "-o", out, "--save", "color,overlay", "--save-probs",
                "--alpha", "0.3") == 0
    loaded = liteseg.load(model_file)
    x = torch.from_numpy(((rgb / 255.0 - 0.5) / 0.5).astype(np.float32).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        logits = loaded.model.eval()(x)[0]
    labels = logits.argmax(0).numpy()
    colours = np.array(loaded.meta.palette, np.uint8)[labels]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "color" / "b.png").convert("RGB")), colours)
    blend = 0.7 * rgb + 0.3 * colours
    overlay = np.asarray(Image.open(out / "overlay" / "b.jpg").convert("RGB")).astype(np.float64)
    assert np.abs(overlay - blend).mean() < 4 < np.abs(overlay - (0.5 * rgb + 0.5 * colours)).mean()
    probs = np.load(out / "probs" / "b.npy")
    assert probs.dtype == np.float16
    np.testing.assert_allclose(probs, torch.softmax(logits, 0).numpy(), atol=1e-3)
    assert not (out / "labels").exists()
