"""The tensor interface every inference-protocol front end shares (KServe v2 on FastAPI, PyTriton, the exported
Triton Python-backend model): one model, ``liteseg``, with

* inputs (send one): ``IMAGE`` BYTES ``[1]`` (an encoded PNG/JPEG/... file) or ``PIXELS`` UINT8 ``[H, W, 3]`` (RGB);
  a leading batch dimension of 1 is accepted too;
* outputs: ``LABELS`` ``[H, W]`` class ids at the input size (UINT8 up to 256 classes, else INT32) and ``PROBS``
  FP32 ``[C, H, W]`` softmax probabilities. As the protocol says, a request that names no outputs gets all of them;
  name ``LABELS`` alone to skip the (large) probabilities.

Decoding and validation live here once, so every front end answers the same image with the same labels and bad
input with the same :class:`ApiError` (status, code, message).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..inference.segmenter import SegResult, Segmenter
from .codecs import decode_image
from .errors import ApiError

MODEL_NAME = "liteseg"
IMAGE, PIXELS, LABELS, PROBS = "IMAGE", "PIXELS", "LABELS", "PROBS"
INPUTS = (IMAGE, PIXELS)
OUTPUTS = (LABELS, PROBS)


def labels_dtype(num_classes: int) -> np.dtype:
    """The dtype of ``LABELS``: what :class:`Segmenter` returns (uint8 up to 256 classes, else int32)."""
    return np.dtype(np.uint8 if num_classes <= 256 else np.int32)


def unknown_model(name: str) -> ApiError:
    return ApiError(404, "unknown_model", f"no model named {name!r}; this server serves {MODEL_NAME!r} "
                                          f"(GET /v2/models/{MODEL_NAME})")


def request_image(inputs: Mapping[str, np.ndarray], max_pixels: int) -> tuple[np.ndarray, list[str]]:
    """The RGB uint8 ``[H, W, 3]`` image of one request's input tensors (exactly one of ``IMAGE``, ``PIXELS``)."""
    unknown = sorted(set(inputs) - set(INPUTS))
    if unknown or len(inputs) != 1:
        raise ApiError(400, "invalid_input", f"send exactly one input tensor, {IMAGE} (BYTES [1]: an encoded image "
                       f"file) or {PIXELS} (UINT8 [H, W, 3]: RGB pixels); got {sorted(inputs) or 'none'}")
    name, value = next(iter(inputs.items()))
    array = np.asarray(value)
    if name == IMAGE:
        if array.size != 1:
            raise ApiError(400, "invalid_shape", f"{IMAGE} holds one encoded image, shape [1]; got shape "
                           f"{list(array.shape)}: send one image per request")
        data = array.reshape(-1)[0]
        if isinstance(data, str) or not isinstance(data, (bytes, np.bytes_)):
            raise ApiError(400, "invalid_datatype", f"{IMAGE} must be BYTES holding an encoded image file; got "
                           f"{type(data).__name__} data ({array.dtype})")
        return decode_image(bytes(data), max_pixels)
    return pixels_image(array, max_pixels), []


def pixels_image(array: np.ndarray, max_pixels: int) -> np.ndarray:
    """A ``PIXELS`` tensor as one RGB uint8 ``[H, W, 3]`` image, or a 4xx :class:`ApiError`."""
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.dtype != np.uint8:
        raise ApiError(400, "invalid_datatype", f"{PIXELS} must be UINT8 RGB pixels; got {array.dtype}. Send "
                       f"uint8 values 0-255, or the encoded file as {IMAGE}")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ApiError(400, "invalid_shape", f"{PIXELS} must be one RGB image of shape [H, W, 3] (HWC); got "
                       f"{list(array.shape)}")
    height, width = array.shape[:2]
    if height * width == 0:
        raise ApiError(400, "empty_image", f"the image is {width}x{height} pixels; send a non-empty image")
    if height * width > max_pixels:
        raise ApiError(413, "image_too_large", f"the image is {width}x{height} = {width * height} pixels, more "
                       f"than the limit of {max_pixels} (--max-pixels); downscale it before sending")
    return np.ascontiguousarray(array)


def requested_outputs(names: list[str] | None) -> list[str]:
    """The outputs to send: those named (checked), else all."""
    if not names:
        return list(OUTPUTS)
    unknown = sorted(set(names) - set(OUTPUTS))
    if unknown:
        raise ApiError(400, "invalid_output", f"unknown output(s) {unknown}; this model has {list(OUTPUTS)}")
    return [n for n in OUTPUTS if n in names]


def probabilities_segmenter(segmenter: Segmenter) -> Segmenter:
    """A :class:`Segmenter` on the same backend (same labels) that also returns probabilities."""
    return Segmenter(segmenter.backend, probs=True, keep_image=False, batch_size=1)


def output_tensors(result: SegResult, names: list[str]) -> dict[str, np.ndarray]:
    """The requested output tensors of one result (``PROBS`` needs a result with probabilities)."""
    tensors = {LABELS: result.labels}
    if PROBS in names:
        assert result.probs is not None, "PROBS needs a Segmenter built with probs=True"
        tensors[PROBS] = result.probs.astype(np.float32, copy=False)
    return {n: tensors[n] for n in names}
