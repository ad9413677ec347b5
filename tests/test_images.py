"""The one image decoder (liteseg.images): each mode per case, and every entry point gives the same pixels."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from liteseg.data.io import read_image as dataset_image
from liteseg.errors import DatasetError, InputError
from liteseg.images import pil_to_rgb, read_image
from liteseg.inference.inputs import as_rgb
from liteseg.serve.codecs import decode_image

RGB = np.random.RandomState(0).randint(0, 256, (6, 5, 3), dtype=np.uint8)
GREY16 = np.array([[0, 257, 65535], [300, 32896, 65000]], dtype=np.uint16)


def _cases() -> dict[str, tuple[Image.Image, np.ndarray, str | None]]:
    """name -> (image, expected RGB, expected note)"""
    palette = Image.fromarray(RGB).quantize(colors=16)
    expected_palette = np.asarray(palette.convert("RGB"))
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])
    cmyk = Image.fromarray(RGB).convert("CMYK")
    scaled16 = np.round(GREY16 / 257.0).astype(np.uint8)
    # grey+alpha 3 rows high: its HWC array (3, 6, 2) has the shape of a channels-first one, which arrays get refused
    grey = np.random.RandomState(1).randint(0, 256, (3, 6), dtype=np.uint8)
    grey_alpha = np.dstack([grey, np.full((3, 6), 9, np.uint8)])
    return {
        "grey+alpha, 3 rows": (Image.fromarray(grey_alpha, mode="LA"), np.repeat(grey_alpha[:, :, :1], 3, axis=2),
                               "grayscale+alpha image: alpha dropped"),
        "16-bit": (Image.fromarray(GREY16), np.repeat(scaled16[:, :, None], 3, axis=2), "16-bit image scaled"),
        "grayscale": (Image.fromarray(RGB[:, :, 0]), np.repeat(RGB[:, :, :1], 3, axis=2), "grayscale"),
        "palette": (palette, expected_palette, "palette image converted to RGB"),
        "palette+transparency": (transparent, expected_palette, "alpha channel dropped"),
        "rgba": (Image.fromarray(rgba), RGB, "alpha channel dropped"),
        "cmyk": (cmyk, np.asarray(cmyk.convert("RGB")), "CMYK image converted to RGB"),
        "rgb": (Image.fromarray(RGB), RGB, None),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_each_mode_decodes_as_documented(name):
    image, expected, note = _cases()[name]
    rgb, notes = pil_to_rgb(image)
    assert rgb.dtype == np.uint8 and rgb.shape == expected.shape
    np.testing.assert_array_equal(rgb, expected)
    assert note is None or any(note in n for n in notes), notes


def test_sixteen_bit_is_scaled_not_saturated():
    rgb, _ = pil_to_rgb(Image.fromarray(GREY16))
    assert rgb[0, :, 0].tolist() == [0, 1, 255] and rgb[1, 1, 0] == 128  # convert("RGB") would give 255s


def test_exif_orientation_is_applied(tmp_path):
    wide = np.zeros((2, 4, 3), np.uint8)
    wide[0, 0] = 255  # one marked corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    path = tmp_path / "phone.jpg"
    Image.fromarray(wide).save(path, quality=100, exif=exif)
    rgb, notes = read_image(path)
    assert rgb.shape == (4, 2, 3) and any("EXIF" in n for n in notes)
    assert rgb[0, 1].min() > 200 and rgb[3, 0].max() < 50  # the top-left corner went to the top right


@pytest.mark.parametrize("name", ["16-bit", "palette+transparency", "rgba", "cmyk", "grayscale", "grey+alpha, 3 rows"])
def test_predict_serve_and_datasets_see_the_same_pixels(name, tmp_path):
    image, expected, _ = _cases()[name]
    path = tmp_path / ("x.tiff" if name == "cmyk" else "x.png")
    image.save(path)
    from_file, _ = read_image(path)
    np.testing.assert_array_equal(from_file, expected)
    np.testing.assert_array_equal(as_rgb(path)[0], from_file)  # predict / Segmenter
    np.testing.assert_array_equal(as_rgb(image)[0], from_file)  # a PIL image passed in
    np.testing.assert_array_equal(dataset_image(path), from_file)  # training, evaluation, INT8 calibration
    np.testing.assert_array_equal(decode_image(path.read_bytes(), max_pixels=10**6)[0], from_file)  # serve


def test_unreadable_files_raise_the_callers_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="bad.png: not a readable image"):
        read_image(bad)
    with pytest.raises(DatasetError, match="bad.png: not a readable image"):
        dataset_image(bad)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "absent.png")
    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), max_pixels=10**6)[0].shape == RGB.shape


def test_one_normalisation_for_inference_training_and_exported_graphs():
    import torch

    from liteseg.data.transforms import Normalize
    from liteseg.export.wrappers import ExportWrapper
    from liteseg.inference.preprocess import normalize as preprocess
    from liteseg.meta import ModelMeta

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    meta = ModelMeta(arch="x", num_classes=2, mean=mean, std=std)
    ours = preprocess(RGB, meta)[0]
    expected = ((RGB.astype(np.float64) / 255 - mean) / std).transpose(2, 0, 1)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    trained = Normalize(mean, std)(RGB, RGB[:, :, 0])[0].numpy()
    wrapper = ExportWrapper(torch.nn.Identity(), preprocess=(mean, std), input_layout="nhwc")
    exported = wrapper.normalize(torch.from_numpy(RGB)[None])[0].numpy()
    np.testing.assert_array_equal(trained, ours)
    np.testing.assert_array_equal(exported, ours)
