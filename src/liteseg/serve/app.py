"""The FastAPI application: ``/v1/segment``, ``/v1/model``, health, readiness, metrics, the web page at ``/``, and
the KServe v2 (:mod:`.kserve`) and PaddleX (:mod:`.paddlex`) routes."""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..inference.about import describe
from ..inference.segmenter import Segmenter
from .batcher import DynamicBatcher
from .bodies import read_body
from .codecs import decode_image, result_json, result_png
from ..inference.budget import DEFAULT_MAX_ASPECT, DEFAULT_MAX_BATCH_PIXELS, DEFAULT_MAX_PIXELS, PixelBudget
from .errors import ApiError
from .guard import GuardMiddleware
from .kserve import ENDPOINTS as V2_ENDPOINTS, add_v2_routes
from .paddlex import ENDPOINT as PADDLEX_ENDPOINT, add_paddlex_route
from .telemetry import CONTENT_TYPE, ServeMetrics, end_with_parent
from .schemas import ErrorBody, ModelInfo, SegmentBody

log = logging.getLogger("liteseg")

CONFIG_ENV = "LITESEG_SERVE_CONFIG"
RAW_TYPES = ("application/octet-stream",)
_ENDPOINTS = {"/", "/v1/segment", "/v1/model", "/healthz", "/readyz", "/metrics", "/openapi.json",
              PADDLEX_ENDPOINT, *V2_ENDPOINTS}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}  # metric labels: any other is "other"


@dataclass
class ServeConfig:
    """Everything ``liteseg serve`` configures; also passed to worker processes as JSON."""

    model: str | None = None
    backend: str | None = None  # None: torch, or ONNX Runtime for an .onnx model
    device: str | None = None
    threads: int | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_upload_mb: float = 20.0
    max_aspect: float = DEFAULT_MAX_ASPECT
    max_batch_pixels: int = DEFAULT_MAX_BATCH_PIXELS
    max_uploads: int = 128  # bodies being received at once, apart from the max_queue images past upload
    upload_grace_s: float = 10.0
    min_upload_kbs: float = 16.0  # KiB/s an upload must keep up after the grace period
    allowed_hosts: list[str] | None = None  # Host header values answered (None: any); set for loopback binds
    imgsz: str | None = None  # "WxH" or "native"; None: the model's own size

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def build_segmenter(config: ServeConfig) -> Segmenter:
    """Load the configured model (or the default one) once, batching up to ``max_batch`` images."""
    from ..loading.zoo import default_model

    return Segmenter(config.model or default_model(), backend=config.backend, device=config.device,
                     threads=config.threads, batch_size=config.max_batch, imgsz=config.imgsz,
                     budget=PixelBudget(config.max_pixels, config.max_aspect, config.max_batch_pixels))


class _State:
    def __init__(self) -> None:
        self.segmenter: Segmenter | None = None
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.uploading = 0  # /v1/segment bodies being received
        self.admitted = 0  # /v1/segment requests being decoded, segmented or encoded


class _MetricsMiddleware:
    """Counts every HTTP request by endpoint and status and times it."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"
        method = scope["method"] if scope["method"] in _METHODS else "other"
        self.metrics.request_started()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request_finished(endpoint, method, status, time.perf_counter() - start)


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


def create_app(config: ServeConfig | None = None, segmenter: Segmenter | None = None) -> FastAPI:
    """The API for ``segmenter`` (or the model in ``config``, loaded at startup), batching as ``config`` says."""
    config = config or ServeConfig()
    state = _State()
    metrics = ServeMetrics()
    index_html = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        seg = segmenter or await run_in_threadpool(build_segmenter, config)
        state.segmenter = seg
        state.batcher = DynamicBatcher(seg.predict_rgb, config.max_batch, config.max_wait_ms, config.max_queue,
                                       any_size=seg.target_hw() is not None, metrics=metrics)
        state.ready = True
        log.info("liteseg serve: %s on %s ready (max batch %d, max wait %g ms, max queue %d)",
                 _model_name(config, seg), seg.backend.name, config.max_batch, config.max_wait_ms, config.max_queue)
        try:
            yield
        finally:
            state.ready = False
            await run_in_threadpool(state.batcher.close)
            if segmenter is None:  # loaded here, so released here
                seg.backend.close()

    app = FastAPI(title="liteseg", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="PP-LiteSeg semantic segmentation over HTTP. Errors are JSON: "
                              '`{"error": {"code", "message", "status"}}`.')
    app.add_middleware(GuardMiddleware, allowed_hosts=frozenset(config.allowed_hosts)
                       if config.allowed_hosts is not None else None)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    def error_response(error: ApiError) -> JSONResponse:
        if error.status == 499:  # the client went away: nothing went wrong here
            log.info("client disconnected during an upload (%s)", error.message)
        else:
            metrics.error(error.code)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                             for e in exc.errors())
        return error_response(ApiError(422, "invalid_parameter", problems))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: f"no endpoint at {request.url.path}; the API is listed at /openapi.json",
                   405: f"{request.method} is not allowed on {request.url.path}; the API is listed at /openapi.json",
                   }.get(exc.status_code, str(exc.detail))
        return error_response(ApiError(exc.status_code, code, message, dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(ApiError(500, "internal_error", "unexpected server error; the server keeps running, "
                                       "see its log"))

    def ready_batcher() -> DynamicBatcher:
        if not state.ready or state.batcher is None:
            raise ApiError(503, "not_ready", "the model is not loaded yet or the server is stopping; retry shortly",
                           {"Retry-After": "1"})
        return state.batcher

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html)

    @app.post("/v1/segment", openapi_extra=_SEGMENT_REQUEST, summary="Segment one image",
              responses={200: {"model": SegmentBody, "content": _PNG,
                               "description": "JSON (format=json) or a PNG (labels, color, overlay)"}, **_ERRORS})
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
        batcher = ready_batcher()
        if state.uploading >= config.max_uploads:  # slow uploads wait here, not in the inference queue
            raise ApiError(503, "uploads_full", f"{state.uploading} uploads are being received (limit "
                           f"{config.max_uploads}, --max-uploads); retry shortly", {"Retry-After": "1"})
        state.uploading += 1
        try:
            data = await read_upload(request, config.max_upload_bytes, config.upload_grace_s,
                                     config.min_upload_kbs * 1024)
        finally:
            state.uploading -= 1
        if state.admitted >= config.max_queue:  # bounds decoded images in memory, not only those in the batcher
            raise batcher.queue_full(state.admitted)
        state.admitted += 1
        try:
            rgb, notes = await run_in_threadpool(decode_image, data, config.max_pixels, config.max_aspect)
            del data
            try:
                result = await batcher.segment(rgb)
            except ApiError:
                raise
            except Exception:
                log.exception("inference failed")
                raise ApiError(500, "inference_failed", "the model failed on this image; the server keeps running, "
                               "see its log") from None
            result.notes = notes
            if fmt == "json":
                return JSONResponse(await run_in_threadpool(result_json, result, rle, alpha if overlay else None))
            return Response(await run_in_threadpool(result_png, result, fmt, alpha), media_type="image/png")
        finally:
            state.admitted -= 1

    @app.get("/v1/model", response_model=ModelInfo, summary="The model being served")
    async def model_info() -> dict[str, Any]:
        ready_batcher()
        seg = state.segmenter
        assert seg is not None
        meta = seg.meta
        return {
            "name": _model_name(config, seg), "arch": meta.arch, "about": describe(meta), "backend": seg.backend.name,
            "num_classes": meta.num_classes,
            "classes": [{"id": i, "name": n, "color": list(c)}
                        for i, (n, c) in enumerate(zip(meta.class_names, meta.palette))],
            "input_shape": list(meta.input_shape), "input_size": list(seg.target_hw() or []) or None,
            "mean": list(meta.mean), "std": list(meta.std), "trained": bool(meta.trained),
            "max_batch": config.max_batch,
            "limits": {"max_pixels": config.max_pixels, "max_upload_mb": config.max_upload_mb,
                       "max_queue": config.max_queue, "max_wait_ms": config.max_wait_ms,
                       "max_aspect": config.max_aspect, "max_batch_pixels": config.max_batch_pixels,
                       "max_uploads": config.max_uploads, "min_upload_kbs": config.min_upload_kbs},
        }

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and a new image request would be admitted",
             responses={503: {"model": ErrorBody}})
    async def readyz() -> dict[str, Any]:
        batcher = ready_batcher()
        queued = max(state.admitted, batcher.pending)
        if state.uploading >= config.max_uploads or queued >= config.max_queue:
            raise ApiError(503, "busy", f"a new request would be refused now ({state.uploading}/{config.max_uploads} "
                           f"uploads, {queued}/{config.max_queue} queued)", {"Retry-After": "1"})
        return {"status": "ready", "queue": batcher.pending, "max_queue": config.max_queue,
                "uploads": state.uploading, "max_uploads": config.max_uploads}

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    add_v2_routes(app, config.max_pixels, config.max_upload_bytes, ready_batcher, lambda: state.segmenter, _version())
    add_paddlex_route(app, config.max_pixels, config.max_upload_bytes, ready_batcher)
    return app


async def read_upload(request: Request, max_bytes: int, grace_s: float = 10.0, min_rate: float = 16 * 1024) -> bytes:
    """The image bytes of a multipart (first file part) or raw-body upload, refusing more than ``max_bytes`` and
    uploads slower than ``min_rate`` bytes/s after ``grace_s`` seconds."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = content_type == "multipart/form-data"
    if not (multipart or content_type.startswith("image/") or content_type in RAW_TYPES):
        raise ApiError(415, "unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not accepted; "
                       "send multipart/form-data with the image in field 'image', or the raw image bytes with "
                       "Content-Type image/png, image/jpeg, ... or application/octet-stream")
    body = await read_body(request, max_bytes, grace_s, min_rate)
    return await _file_part(request, body) if multipart else body


async def _file_part(request: Request, body: bytes) -> bytes:
    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except (HTTPException, ValueError) as e:
        detail = e.detail if isinstance(e, HTTPException) else str(e)
        raise ApiError(400, "invalid_multipart", f"the multipart body cannot be parsed ({detail}); send one file "
                       "in field 'image'") from None
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(400, "missing_file", "the multipart body has no file part; send the image as a file "
                           "in field 'image' (curl -F image=@photo.jpg)")
        part = form.get("image") if isinstance(form.get("image"), UploadFile) else files[0]
        part_type = (part.content_type or "").split(";")[0].strip().lower()
        if part_type and not (part_type.startswith("image/") or part_type in RAW_TYPES):
            raise ApiError(415, "unsupported_media_type", f"the uploaded file {part.filename!r} has Content-Type "
                           f"{part_type!r}; send an image (image/png, image/jpeg, ...)")
        return await part.read()
    finally:
        await form.close()


def _model_name(config: ServeConfig, seg: Segmenter) -> str:
    return Path(config.model or seg.meta.source or seg.meta.arch).name


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("liteseg")
    except PackageNotFoundError:
        return "0"


def config_to_env(config: ServeConfig) -> str:
    """``config`` as the JSON string :func:`app_from_env` reads from ``$LITESEG_SERVE_CONFIG``."""
    return json.dumps(asdict(config))


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes: the configuration comes from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    end_with_parent()
    return create_app(ServeConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}"))))
