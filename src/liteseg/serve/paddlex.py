"""PaddleX-compatible ``POST /semantic-segmentation``: PaddleX's serving schema, so PaddleX clients switch by
changing the host.

Field names as in PaddleX's ``paddlex/inference/serving/schemas/semantic_segmentation.py`` and
``infra/models.py``: request ``{"image", "targetSize", "visualize"}``; answer ``{"logId", "errorCode": 0,
"errorMsg": "Success", "result": {"labelMap", "size", "image"}}``; errors ``{"logId", "errorCode", "errorMsg"}``
with ``errorCode`` the HTTP status, as PaddleX's app does. Unlike PaddleX, an ``image`` URL is refused (422): the
server fetches nothing.
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..inference.output_encoding import jpeg_bytes
from ..inference.segmenter import SegResult
from .codecs import decode_image
from .errors import ApiError
from .kserve import run_inference
from .state import ServeState

ENDPOINT = "/semantic-segmentation"


def paddlex_error(error: ApiError) -> JSONResponse:
    return JSONResponse({"logId": str(uuid.uuid4()), "errorCode": error.status, "errorMsg": error.message},
                        status_code=error.status, headers=error.headers)


def parse_request(body: bytes) -> tuple[bytes, bool]:
    """The image bytes and ``visualize`` of a PaddleX request body, or a 4xx :class:`ApiError`."""
    try:
        request = json.loads(body)
    except ValueError as e:
        raise ApiError(422, "invalid_request", f"the body is not JSON ({e}); send {{\"image\": <base64 image>}}") \
            from None
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        raise ApiError(422, "invalid_request", "the body must be a JSON object with \"image\": the base64 of an "
                       "image file")
    image, target, visualize = request["image"], request.get("targetSize"), request.get("visualize")
    if target not in (None, -1, [-1, -1]):
        raise ApiError(422, "invalid_parameter", f"targetSize {target!r} is not supported; leave it out (the "
                       "labels come at the image's own size)")
    if visualize is not None and not isinstance(visualize, bool):
        raise ApiError(422, "invalid_parameter", f"visualize must be true, false or null; got {visualize!r}")
    if image.split(":", 1)[0].lower() in ("http", "https", "ftp", "file"):
        raise ApiError(422, "url_not_supported", "\"image\" is a URL; this server fetches nothing: send the base64 "
                       "of the image file")
    try:
        data = base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_base64", "\"image\" is not valid base64; send the base64 of the image file") \
            from None
    return data, visualize is not False


def decode_request(body: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """The RGB image and ``visualize`` of a PaddleX request body (one thread hop), or a 4xx :class:`ApiError`."""
    data, visualize = parse_request(body)
    return decode_image(data, max_pixels)[0], visualize


def result_body(result: SegResult, visualize: bool) -> dict[str, Any]:
    """PaddleX's ``InferResult`` (``labelMap`` row-major, ``size`` [h, w], ``image`` a base64 JPEG overlay)."""
    labels = result.labels
    body: dict[str, Any] = {"labelMap": labels.ravel().tolist(), "size": [int(labels.shape[0]), int(labels.shape[1])]}
    if visualize:
        body["image"] = base64.b64encode(jpeg_bytes(result.overlay())).decode("ascii")
    return {"logId": str(uuid.uuid4()), "errorCode": 0, "errorMsg": "Success", "result": body}


def paddlex_router(state: ServeState) -> APIRouter:
    """``POST /semantic-segmentation`` over ``state``'s model and batcher; uploads and images take the same slots as
    ``/v1/segment``'s."""
    router = APIRouter()
    config = state.config

    @router.post(ENDPOINT, summary="PaddleX-compatible semantic segmentation (base64 image in, labelMap out)")
    async def semantic_segmentation(request: Request) -> Response:
        try:
            batcher = state.ready_batcher()
            slots = state.slots
            body = await slots.body(request, config.max_upload_bytes * 4 // 3 + 1024)  # base64 grows it by 4/3
            with slots.admit(batcher):
                rgb, visualize = await run_in_threadpool(decode_request, body, config.max_pixels)
                del body
                result = await run_inference(batcher.segment(rgb))
                return JSONResponse(await run_in_threadpool(result_body, result, visualize))
        except ApiError as e:
            return paddlex_error(e)

    return router
