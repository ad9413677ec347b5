"""liteseg's own REST API, v1: ``POST /v1/segment`` (an image in; JSON or a PNG out) and ``GET /v1/model``."""
from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..inference.about import describe
from ..inference.segmenter import SegResult
from .batcher import DynamicBatcher
from .bodies import read_upload
from .codecs import decode_image, result_json, result_png
from .errors import ApiError
from .schemas import ErrorBody, ModelInfo, SegmentBody
from .state import ServeState

log = logging.getLogger("liteseg")

_IMAGE_SCHEMA = {"schema": {"type": "string", "format": "binary"}}
_SEGMENT_REQUEST = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                       "properties": {"image": {"type": "string", "format": "binary"}}}},
    "image/png": _IMAGE_SCHEMA, "image/jpeg": _IMAGE_SCHEMA, "image/*": _IMAGE_SCHEMA,
    "application/octet-stream": _IMAGE_SCHEMA}}}
_PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "not an image, truncated or empty"},
    408: {"model": ErrorBody, "description": "the upload arrived too slowly (--min-upload-kbs)"},
    413: {"model": ErrorBody, "description": "upload or image over the configured limits (size, pixels, aspect)"},
    415: {"model": ErrorBody, "description": "unsupported Content-Type"},
    422: {"model": ErrorBody, "description": "invalid query parameter"},
    503: {"model": ErrorBody, "description": "queue full or not ready; see Retry-After"},
}
_SEGMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": SegmentBody, "content": _PNG, "description": "JSON (format=json) or a PNG (labels, color, overlay)"},
    **_ERRORS}


def rest_router(state: ServeState) -> APIRouter:
    """The v1 routes over ``state``'s model and batcher."""
    router = APIRouter()
    config = state.config

    @router.post("/v1/segment", openapi_extra=_SEGMENT_REQUEST, summary="Segment one image",
                 responses=_SEGMENT_RESPONSES)
    async def segment(
        request: Request,
        fmt: Literal["json", "labels", "color", "overlay"] = Query(
            "json", alias="format", description="json: classes and shares; labels: class-id PNG; color: colour "
                                                "mask PNG; overlay: mask blended over the image"),
        alpha: float = Query(0.5, ge=0.0, le=1.0, description="overlay opacity"),
        rle: bool = Query(False, description="json: add each class mask as COCO RLE"),
        overlay: bool = Query(False, description="json: add the overlay as a base64 PNG"),
    ) -> Response:
        """Send an image as multipart/form-data (field `image`) or as the raw body (Content-Type image/*)."""
        batcher = state.ready_batcher()
        slots = state.slots
        async with slots.upload():
            data = await read_upload(request, config.max_upload_bytes, slots.grace_s, slots.min_rate)
        with slots.admit(batcher):
            rgb, notes = await run_in_threadpool(decode_image, data, config.max_pixels, config.max_aspect)
            del data
            result = await _segment(batcher, rgb)
            result.notes = notes
            if fmt == "json":
                return JSONResponse(await run_in_threadpool(result_json, result, rle, alpha if overlay else None))
            return Response(await run_in_threadpool(result_png, result, fmt, alpha), media_type="image/png")

    @router.get("/v1/model", response_model=ModelInfo, summary="The model being served")
    async def model_info() -> dict[str, Any]:
        return describe_model(state)

    return router


async def _segment(batcher: DynamicBatcher, rgb: Any) -> SegResult:
    try:
        return await batcher.segment(rgb)
    except ApiError:
        raise
    except Exception:
        log.exception("inference failed")
        raise ApiError(500, "inference_failed", "the model failed on this image; the server keeps running, see its "
                       "log") from None


def describe_model(state: ServeState) -> dict[str, Any]:
    """``GET /v1/model``: the model, its classes, preprocessing and the server's limits."""
    seg, config = state.loaded_segmenter(), state.config
    meta = seg.meta
    return {
        "name": state.model_name(), "arch": meta.arch, "about": describe(meta), "backend": seg.backend.name,
        "num_classes": meta.num_classes,
        "classes": [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(zip(meta.class_names,
                                                                                          meta.palette))],
        "input_shape": list(meta.input_shape), "input_size": list(seg.target_hw() or []) or None,
        "mean": list(meta.mean), "std": list(meta.std), "trained": bool(meta.trained), "max_batch": config.max_batch,
        "limits": {"max_pixels": config.max_pixels, "max_upload_mb": config.max_upload_mb,
                   "max_queue": config.max_queue, "max_wait_ms": config.max_wait_ms, "max_aspect": config.max_aspect,
                   "max_batch_pixels": config.max_batch_pixels, "max_uploads": config.max_uploads,
                   "min_upload_kbs": config.min_upload_kbs},
    }

