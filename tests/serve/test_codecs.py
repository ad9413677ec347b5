"""Upload decoding and response encoding without a server."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from liteseg.inference.segmenter import SegResult
from liteseg.inference.output_encoding import labels_png as label_png
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
