"""Many parallel requests are batched and give the same labels as sequential ones."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from PIL import Image

from .conftest import png_bytes, random_image


def _labels(client: httpx.Client, url: str, data: bytes) -> np.ndarray:
    response = client.post(f"{url}/v1/segment", params={"format": "labels"}, content=data,
                           headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _batch_sizes(url: str) -> tuple[float, float]:
    lines = dict(line.rsplit(" ", 1) for line in httpx.get(f"{url}/metrics").text.splitlines()
                 if line and not line.startswith("#"))
    return float(lines.get("liteseg_batch_size_count", 0)), float(lines.get("liteseg_batch_size_sum", 0))


def test_parallel_requests_are_batched_and_match_sequential(start_server):
    url = start_server(max_batch=8, max_wait_ms=200)
    # two sizes, so batches must be split by shape
    images = [png_bytes(random_image(32, 48, seed=i) if i % 3 else random_image(40, 40, seed=i)) for i in range(16)]
    with httpx.Client(timeout=60) as client:
        sequential = [_labels(client, url, data) for data in images]
    batches_before, images_before = _batch_sizes(url)
    assert (batches_before, images_before) == (16, 16)  # one at a time: batches of one

    def one(data: bytes) -> np.ndarray:
        with httpx.Client(timeout=60) as client:
            return _labels(client, url, data)

    with ThreadPoolExecutor(16) as pool:
        parallel = list(pool.map(one, images))
    for seq, par in zip(sequential, parallel):
        np.testing.assert_array_equal(seq, par)
    batches, total = _batch_sizes(url)
    assert total - images_before == 16
    assert batches - batches_before < 16, "parallel requests were never batched together"
