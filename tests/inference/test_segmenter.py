"""``liteseg.Segmenter``: every input kind, conversions with notes, batching, fixed-shape models, outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import liteseg
from liteseg.inference.backends import TorchBackend
from liteseg.inference.inputs import InputError
from liteseg.loading import resolve_model
from liteseg.meta import ModelMeta

from ..conftest import randomize_, require_module


@pytest.fixture(scope="module")
def small_model():
    """Randomised weights (seed 5: two noise images' labels differ on ~14% of pixels; seed 0 labels ~all one class)."""
    return randomize_(liteseg.create_model("pp_liteseg_t", num_classes=5), seed=5).eval()


@pytest.fixture(scope="module")
def seg(small_model):
    return liteseg.Segmenter(small_model, probs=True, logits=True)


def _raw_argmax(model, rgb: np.ndarray, meta: ModelMeta) -> np.ndarray:
    x = (rgb.astype(np.float32) / 255 - np.array(meta.mean, np.float32)) / np.array(meta.std, np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))[0].argmax(0).numpy()


def test_labels_equal_raw_model_argmax(seg, small_model):
    rgb = np.random.RandomState(0).randint(0, 255, (45, 70, 3), dtype=np.uint8)
    result = seg(rgb)
    assert result.labels.shape == (45, 70) and result.labels.dtype == np.uint8
    np.testing.assert_array_equal(result.labels, _raw_argmax(small_model, rgb, seg.meta))
    assert result.probs.shape == (5, 45, 70)
    np.testing.assert_allclose(result.probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.logits.argmax(0), result.labels)


def test_fixture_model_on_real_image(fixture_dir, camvid_dir):
    loaded = liteseg.load(fixture_dir / "inference")
    seg = liteseg.Segmenter(loaded)
    path = sorted((camvid_dir / "images" / "val").iterdir())[0]
    result = seg(path)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(result.labels, _raw_argmax(loaded.model, rgb, loaded.meta))
    assert result.class_names[0] == "road" and result.source == str(path)
    assert abs(sum(result.class_shares().values()) - 1.0) < 1e-9


def test_path_pil_numpy_bgr_and_batches_agree(seg, tmp_path):
    rgb = np.random.RandomState(1).randint(0, 255, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    ref = seg(rgb).labels
    np.testing.assert_array_equal(seg(tmp_path / "a.png").labels, ref)
    np.testing.assert_array_equal(seg(str(tmp_path / "a.png")).labels, ref)
    np.testing.assert_array_equal(seg(Image.fromarray(rgb)).labels, ref)
    np.testing.assert_array_equal(seg(rgb[:, :, ::-1].copy(), channel_order="bgr").labels, ref)
    np.testing.assert_array_equal(seg(torch.from_numpy(rgb)).labels, ref)
    batch = seg(np.stack([rgb, rgb[::-1].copy()]))
    assert len(batch) == 2
    np.testing.assert_array_equal(batch[0].labels, ref)


def test_batched_forward_equals_single(small_model):
    imgs = [np.random.RandomState(i).randint(0, 255, (40, 40, 3), dtype=np.uint8) for i in range(3)]
    imgs.append(np.random.RandomState(9).randint(0, 255, (30, 50, 3), dtype=np.uint8))
    one = liteseg.Segmenter(small_model, batch_size=1)(imgs)
    many = liteseg.Segmenter(small_model, batch_size=4)(imgs)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a.labels, b.labels)


def test_odd_images_are_converted_with_a_warning(seg, tmp_path, caplog):
    gray = np.random.RandomState(2).randint(0, 255, (20, 30), dtype=np.uint8)
    rgba = np.dstack([np.stack([gray] * 3, -1), np.full((20, 30), 7, np.uint8)])
    deep = gray.astype(np.uint16) * 257
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(deep).save(tmp_path / "deep.png")
    ref = seg(np.stack([gray] * 3, -1)).labels
    for name, note in [("gray.png", "grayscale"), ("rgba.png", "alpha"), ("deep.png", "16-bit")]:
        caplog.clear()
        result = seg(tmp_path / name)
        np.testing.assert_array_equal(result.labels, ref)
        assert any(note in n for n in result.notes)
        assert any(note in r.getMessage() for r in caplog.records)


def test_bad_inputs_raise_clear_errors(seg, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        seg(tmp_path / "notes.png")
    with pytest.raises(InputError, match="no such file"):
        seg(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="channels-first"):
        seg(np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(InputError, match="cannot read an image"):
        seg(12)


def _resized_reference(model, image: np.ndarray, net_hw: tuple[int, int]) -> np.ndarray:
    """Labels of ``image`` through a model that runs at ``net_hw``: bilinear resize (rounded to uint8), the model,
    its logits resized back bilinearly, argmax."""
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    small = F.interpolate(t, size=net_hw, mode="bilinear", align_corners=False).round().clamp(0, 255)
    with torch.no_grad():
        logits = model((small / 255 - 0.5) / 0.5)
    return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)[0].argmax(0).numpy()


def test_fixed_shape_model_labels_are_resize_model_resize_back(small_model):
    """Each image of a fixed-shape (64x64) model against its own reference; one model call per image (fixed batch
    of 1)."""
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=5, input_shape=[1, 3, 64, 64])
    seen = []

    class Probe(TorchBackend):
        def __call__(self, x):
            seen.append(x.shape)
            return super().__call__(x)

    images = [np.random.RandomState(seed).randint(0, 255, (50, 90, 3), dtype=np.uint8) for seed in (10, 11)]
    results = liteseg.Segmenter(Probe(small_model, meta), batch_size=8)(images)
    assert seen == [(1, 3, 64, 64)] * 2
    for image, result in zip(images, results):
        np.testing.assert_array_equal(result.labels, _resized_reference(small_model, image, (64, 64)))
    assert (results[0].labels != results[1].labels).mean() > 0.05, "references too alike to tell images apart"


def test_deploy_resize_transform_runs_the_model_at_its_size(small_model):
    """A PaddleSeg deploy config's ``Resize`` (target_size W, H) sets the size the network runs at."""
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=5, config=small_model.config,
                     extra={"transforms": [{"type": "Resize", "target_size": [48, 40]}, {"type": "Normalize"}]})
    image = np.random.RandomState(12).randint(0, 255, (50, 90, 3), dtype=np.uint8)
    result = liteseg.Segmenter(small_model, meta=meta)(image)
    expected = _resized_reference(small_model, image, (40, 48))
    np.testing.assert_array_equal(result.labels, expected)
    assert (expected != _raw_argmax(small_model, image, meta)).mean() > 0.01, "the resize must change the labels"


def test_keep_image_false_keeps_labels_and_drops_the_image(seg, small_model):
    rgb = np.random.RandomState(13).randint(0, 255, (30, 44, 3), dtype=np.uint8)
    result = liteseg.Segmenter(small_model, keep_image=False)(rgb)
    assert result.image is None
    np.testing.assert_array_equal(result.labels, _raw_argmax(small_model, rgb, seg.meta))
    with pytest.raises(ValueError, match="keep_image=True"):
        result.overlay()
    np.testing.assert_array_equal(seg(rgb).image, rgb)


def test_result_outputs_are_written(seg, tmp_path):
    result = seg(np.random.RandomState(3).randint(0, 255, (24, 36, 3), dtype=np.uint8))
    paths = result.save(tmp_path, stem="x", kinds=("labels", "color", "overlay", "probs"))
    assert np.array_equal(np.asarray(Image.open(paths["labels"])), result.labels)
    with Image.open(paths["color"]) as color:  # a palette PNG, as PaddleSeg writes pseudo-colour masks
        assert color.mode == "P" and np.array_equal(np.asarray(color), result.labels)
        np.testing.assert_array_equal(np.asarray(color.convert("RGB")), result.colorize())
    assert np.load(paths["probs"]).shape == (5, 24, 36)
    with pytest.raises(FileExistsError):
        result.save(tmp_path, stem="x", kinds=("labels",))
    colors = result.colorize()
    np.testing.assert_array_equal(colors[0, 0], result.palette[result.labels[0, 0]])
    blended = result.overlay(1.0)
    np.testing.assert_array_equal(blended, colors)


@pytest.mark.parametrize("output", ["labels", "probs"])
def test_exported_label_and_prob_graphs_give_the_same_labels(small_model, tmp_path, output):
    require_module("onnxruntime")
    from liteseg.export.onnx import export_onnx

    meta = ModelMeta(arch="pp_liteseg_t", num_classes=5, config=small_model.config)
    path = tmp_path / f"{output}.onnx"
    export_onnx(resolve_model(small_model, meta), path, output=output, include_preprocess=True,
                input_layout="nhwc", verify=False)  # this test checks the labels itself
    rgb = np.random.RandomState(4).randint(0, 255, (40, 56, 3), dtype=np.uint8)
    expected = liteseg.Segmenter(small_model, meta=meta)(rgb).labels
    seg = liteseg.Segmenter(str(path), backend="onnxruntime", probs=output == "probs")
    result = seg(rgb)
    assert (result.labels != expected).mean() < 0.01
    if output == "labels":
        with pytest.raises(liteseg.LitesegError, match="outputs labels"):
            liteseg.Segmenter(str(path), backend="onnxruntime", probs=True)
    else:
        np.testing.assert_allclose(result.probs.sum(0), 1.0, atol=1e-4)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_segmenter_backends_agree_with_torch(small_model, backend):
    require_module(backend)
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=5, config=small_model.config)
    rgb = np.random.RandomState(5).randint(0, 255, (48, 64, 3), dtype=np.uint8)
    torch_result = liteseg.Segmenter(small_model, meta=meta, logits=True)(rgb)
    other = liteseg.Segmenter(small_model, backend=backend, meta=meta, logits=True)(rgb)
    assert np.abs(other.logits - torch_result.logits).max() < 1e-4
    np.testing.assert_array_equal(other.labels, torch_result.labels)


def test_tiled_prediction_equals_a_reference_window_average(small_model):
    rgb = np.random.RandomState(6).randint(0, 255, (70, 100, 3), dtype=np.uint8)
    seg = liteseg.Segmenter(small_model, logits=True, tile="64x48,40x30")
    result = seg(rgb)
    x = torch.from_numpy(((rgb / 255.0 - 0.5) / 0.5).astype(np.float32).transpose(2, 0, 1)[None].copy())
    total = torch.zeros(1, 5, 70, 100, dtype=torch.float64)
    count = torch.zeros(1, 1, 70, 100, dtype=torch.float64)
    for y1 in (0, 22):  # rows: ceil((70-48)/30)+1 = 2 windows, the last shifted back inside
        for x1 in (0, 36):  # cols: ceil((100-64)/40)+1 = 2
            with torch.no_grad():
                total[..., y1:y1 + 48, x1:x1 + 64] += small_model(x[..., y1:y1 + 48, x1:x1 + 64])
            count[..., y1:y1 + 48, x1:x1 + 64] += 1
    expected = (total / count).float()[0].numpy()
    assert np.abs(result.logits - expected).max() < 1e-4
    np.testing.assert_array_equal(result.labels, expected.argmax(0))


def test_tile_cli_option(small_model, tmp_path):
    from liteseg.cli.main import main
    from liteseg.formats.native import save_native

    model_path = tmp_path / "m.safetensors"
    save_native(model_path, small_model.state_dict(), {"arch": "pp_liteseg_t", "config": small_model.config,
                                                        "meta": {}})
    Image.fromarray(np.random.RandomState(7).randint(0, 255, (70, 100, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--model", str(model_path), "-o", str(tmp_path / "o"),
                 "--tile", "64x48,40x30", "--save", "labels"]) == 0
    expected = liteseg.Segmenter(str(model_path), tile="64x48,40x30")(tmp_path / "a.png").labels
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "labels" / "a.png")), expected)
