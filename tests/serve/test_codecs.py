"""Upload decoding and response encoding without a server."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from liteseg.errors import InputError
from liteseg.inference.segmenter import SegResult
from liteseg.inference.output_encoding import labels_png as label_png
from liteseg.serve import codecs
from liteseg.serve.codecs import decode_image, result_json, rle_decode, rle_encode
from liteseg.serve.errors import ApiError

from .conftest import png_bytes, random_image


@pytest.mark.parametrize("mask", [
    np.zeros((3, 4), bool), np.ones((3, 4), bool), np.eye(5, 7, dtype=bool),
    np.random.RandomState(0).rand(9, 11) > 0.5,
], ids=["empty", "full", "diagonal", "random"])
def test_rle_round_trip_is_coco_column_major(mask):
    rle = rle_encode(mask)
    assert rle["size"] == list(mask.shape) and sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(rle_decode(rle), mask)


def test_rle_counts_start_with_the_zero_run():
    mask = np.array([[1, 0], [1, 1]], dtype=bool)  # column-major: 1, 1, 0, 1
    assert rle_encode(mask)["counts"] == [0, 2, 1, 1]


def test_decode_checks_size_before_decoding_and_converts_modes():
    rgb, notes = decode_image(png_bytes(random_image(10, 12)), max_pixels=120)
    assert rgb.shape == (10, 12, 3) and notes == []
    with pytest.raises(ApiError) as info:
        decode_image(png_bytes(random_image(10, 13)), max_pixels=120)
    assert info.value.status == 413
    buffer = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).save(buffer, format="PNG")
    rgb16, notes16 = decode_image(buffer.getvalue(), max_pixels=100)
    assert rgb16.dtype == np.uint8 and "16-bit" in notes16[0]


def test_result_json_and_label_png():
    labels = np.array([[0, 2], [2, 2]], dtype=np.uint8)
    result = SegResult(labels, ["a", "b", "c"], [[1, 2, 3], [4, 5, 6], [7, 8, 9]], image=random_image(2, 2))
    body = result_json(result, rle=True, overlay_alpha=0.5)
    assert [(c["name"], c["pixels"], c["share"], c["color"]) for c in body["classes"]] == [
        ("a", 1, 0.25, [1, 2, 3]), ("c", 3, 0.75, [7, 8, 9])]
    assert body["overlay_png"] and body["classes"][1]["rle"]["counts"] == [1, 3]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(label_png(labels)))), labels)
    many = np.array([[0, 300]], dtype=np.int32)
    assert np.asarray(Image.open(io.BytesIO(label_png(many)))).max() == 300


def _api_error(data: bytes, max_pixels: int = 10_000, max_aspect: float | None = 20.0) -> ApiError:
    with pytest.raises(ApiError) as info:
        decode_image(data, max_pixels, max_aspect)
    return info.value


def test_decode_errors_have_their_status_code_and_advice(monkeypatch):
    empty = _api_error(b"")
    assert (empty.status, empty.code, empty.message) == (
        400, "empty_body", "the request carries no image bytes; send a PNG/JPEG/BMP/TIFF/WebP file")
    junk = _api_error(b"not an image at all")
    assert (junk.status, junk.code, junk.message) == (
        400, "invalid_image", "the 19 bytes sent are not an image liteseg can read (starts with b'not an i'); "
                              "send a PNG, JPEG, BMP, TIFF or WebP file")
    truncated = _api_error(png_bytes(random_image(20, 20))[:-40])
    assert (truncated.status, truncated.code) == (400, "invalid_image")
    assert truncated.message.startswith("the PNG data is truncated or corrupt (")
    assert truncated.message.endswith("); re-export the image and send it again")
    large = _api_error(png_bytes(random_image(10, 11)), max_pixels=109)
    assert (large.status, large.code, large.message) == (
        413, "image_too_large", "the image is 11x10 = 110 pixels, more than the limit of 109 (--max-pixels); "
                                "downscale it before sending")
    thin = _api_error(png_bytes(random_image(1, 25)), max_pixels=25)  # exactly the pixel limit, too thin
    assert (thin.status, thin.code) == (413, "bad_aspect_ratio")
    assert thin.message.endswith("which costs far more memory than its area; crop or pad it before sending")
    assert decode_image(png_bytes(random_image(1, 25)), 25, None)[0].shape == (1, 25, 3)  # aspect unchecked
    assert decode_image(png_bytes(random_image(1, 1)), 1)[0].shape == (1, 1, 3)
    with monkeypatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
        bomb = _api_error(png_bytes(random_image(5, 5)))  # over twice PIL's limit: refused before decoding
    assert (bomb.status, bomb.code) == (413, "image_too_large") and bomb.message.endswith("; send a smaller image")
    assert bomb.message.startswith("Image size (25 pixels) exceeds")


@pytest.mark.parametrize("size", [(0, 5), (5, 0)])
def test_an_image_of_no_pixels_is_400_empty_image(size, monkeypatch):
    """PIL writes no empty image, so ``Image.open`` is stood in by one whose header claims ``size``."""
    monkeypatch.setattr(Image, "open", lambda data: Image.new("RGB", size))
    error = _api_error(b"GIF89a...")
    assert (error.status, error.code, error.message) == (
        400, "empty_image", f"the image is {size[0]}x{size[1]} pixels; send a non-empty image")


def test_an_image_liteseg_cannot_convert_is_400_invalid_image(monkeypatch):
    def refuse(img: Image.Image, source: str) -> None:
        raise InputError(f"{source}: cannot be converted")

    monkeypatch.setattr(codecs, "pil_to_rgb", refuse)
    error = _api_error(png_bytes(random_image(2, 2)))
    assert (error.status, error.code, error.message) == (400, "invalid_image", "upload: cannot be converted")


def test_rle_reads_any_non_zero_value_as_inside_and_decodes_to_booleans():
    mask = np.array([[0, 2], [1, 0]], dtype=np.uint8)  # column-major: 0, 1, 2, 0
    rle = rle_encode(mask)
    assert rle["counts"] == [1, 2, 1]
    decoded = rle_decode(rle)
    assert decoded.dtype == bool
    np.testing.assert_array_equal(decoded, mask > 0)


def test_result_json_names_and_colours_classes_beyond_the_lists():
    labels = np.array([[0, 2, 2], [3, 0, 0]], dtype=np.uint8)  # 2 x 3; class 2 has no colour, 3 no name
    result = SegResult(labels, ["a", "b", "c"], [[1, 2, 3], [4, 5, 6]], notes=["resized"])
    body = result_json(result)
    assert (body["width"], body["height"], body["notes"]) == (3, 2, ["resized"]) and "overlay_png" not in body
    assert body["classes"] == [
        {"id": 0, "name": "a", "color": [1, 2, 3], "pixels": 3, "share": 0.5},
        {"id": 2, "name": "c", "color": [0, 0, 0], "pixels": 2, "share": 2 / 6},
        {"id": 3, "name": "3", "color": [0, 0, 0], "pixels": 1, "share": 1 / 6}]
    one = result_json(SegResult(np.array([[1]], np.uint8), ["a", "b"], [[0, 0, 0], [9, 9, 9]]))
    assert one["classes"] == [{"id": 1, "name": "b", "color": [9, 9, 9], "pixels": 1, "share": 1.0}]


def test_the_json_overlay_is_the_png_of_the_overlay_at_that_alpha():
    labels = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    image = random_image(2, 2)
    result = SegResult(labels, ["a", "b"], [[200, 0, 0], [0, 0, 200]], image=image)
    palette = np.array([[200, 0, 0], [0, 0, 200]], np.float64)[labels]
    for alpha in (0.25, 0.8):
        png = base64.b64decode(result_json(result, overlay_alpha=alpha)["overlay_png"])
        expected = np.round((1 - alpha) * image + alpha * palette)
        np.testing.assert_allclose(np.asarray(Image.open(io.BytesIO(png))), expected, atol=1)
