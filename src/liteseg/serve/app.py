"""The FastAPI application: ``/v1/segment``, ``/v1/model``, health, readiness, metrics and the web page at ``/``."""
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
from ..inference.segmenter import SegResult, Segmenter
from .batcher import DynamicBatcher
from .codecs import decode_image, label_png, encode_png, result_json
from .errors import ApiError
from .telemetry import CONTENT_TYPE, ServeMetrics
from .schemas import ErrorBody, ModelInfo, SegmentBody

log = logging.getLogger("liteseg")

CONFIG_ENV = "LITESEG_SERVE_CONFIG"
RAW_TYPES = ("application/octet-stream",)
_ENDPOINTS = {"/", "/v1/segment", "/v1/model", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}


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
    max_pixels: int = 4096 * 4096
    max_upload_mb: float = 20.0
    imgsz: str | None = None  # "WxH" or "native"; None: the model's own size

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def build_segmenter(config: ServeConfig) -> Segmenter:
    """Load the configured model (or the default one) once, batching up to ``max_batch`` images."""
    from ..loading.zoo import default_model

    return Segmenter(config.model or default_model(), backend=config.backend, device=config.device,
                     threads=config.threads, batch_size=config.max_batch, imgsz=config.imgsz)


class _State:
    def __init__(self) -> None:
        self.segmenter: Segmenter | None = None
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.admitted = 0  # /v1/segment requests being read, decoded, segmented or encoded


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
        self.metrics.request_started()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request_finished(endpoint, scope["method"], status, time.perf_counter() - start)


_IMAGE_SCHEMA = {"schema": {"type": "string", "format": "binary"}}
_SEGMENT_REQUEST = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                       "properties": {"image": {"type": "string", "format": "binary"}}}},
    "image/png": _IMAGE_SCHEMA, "image/jpeg": _IMAGE_SCHEMA, "image/*": _IMAGE_SCHEMA,
    "application/octet-stream": _IMAGE_SCHEMA}}}
_PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "not an image, truncated or empty"},
    413: {"model": ErrorBody, "description": "upload or image larger than the configured limits"},
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

    app = FastAPI(title="liteseg", version=_version(), lifespan=lifespan,
                  description="PP-LiteSeg semantic segmentation over HTTP. Errors are JSON: "
                              '`{"error": {"code", "message", "status"}}`.')
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    def error_response(error: ApiError) -> JSONResponse:
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
        message = {404: f"no endpoint at {request.url.path}; the API is listed at /docs",
                   405: f"{request.method} is not allowed on {request.url.path}; the API is listed at /docs",
                   }.get(exc.status_code, str(exc.detail))
        return error_response(ApiError(exc.status_code, code, message, dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(ApiError(500, "internal_error", f"unexpected server error ({type(exc).__name__}); "
                                       "the server keeps running, see its log"))

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
        if state.admitted >= config.max_queue:  # bounds uploads in memory too, not only images in the batcher
            raise batcher.queue_full(state.admitted)
        state.admitted += 1
        try:
            data = await read_upload(request, config.max_upload_bytes)
            rgb, notes = await run_in_threadpool(decode_image, data, config.max_pixels)
            del data
            try:
                result = await batcher.segment(rgb)
            except ApiError:
                raise
            except Exception as e:
                raise ApiError(500, "inference_failed", f"the model failed on this image ({type(e).__name__}: "
                               f"{e}); the server keeps running") from None
            result.notes = notes
            if fmt == "json":
                return JSONResponse(await run_in_threadpool(result_json, result, rle, alpha if overlay else None))
            return Response(await run_in_threadpool(_render_png, result, fmt, alpha), media_type="image/png")
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
                       "max_queue": config.max_queue, "max_wait_ms": config.max_wait_ms},
        }

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and requests are accepted",
             responses={503: {"model": ErrorBody}})
    async def readyz() -> dict[str, Any]:
        batcher = ready_batcher()
        return {"status": "ready", "queue": batcher.pending, "max_queue": config.max_queue}

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    return app


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The image bytes of a multipart (first file part) or raw-body upload, refusing more than ``max_bytes``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = content_type == "multipart/form-data"
    if not (multipart or content_type.startswith("image/") or content_type in RAW_TYPES):
        raise ApiError(415, "unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not accepted; "
                       "send multipart/form-data with the image in field 'image', or the raw image bytes with "
                       "Content-Type image/png, image/jpeg, ... or application/octet-stream")
    too_large = ApiError(413, "upload_too_large", f"the upload is larger than {max_bytes} bytes "
                         f"({max_bytes / 2**20:g} MiB, --max-upload-mb); send a smaller or compressed image")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
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


def _render_png(result: SegResult, fmt: str, alpha: float) -> bytes:
    if fmt == "labels":
        return label_png(result.labels)
    return encode_png(result.colorize() if fmt == "color" else result.overlay(alpha))


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
    return create_app(ServeConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}"))))
