"""Health and metrics: ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from .errors import ApiError
from .schemas import ErrorBody
from .state import ServeState
from .telemetry import CONTENT_TYPE


def health_router(state: ServeState) -> APIRouter:
    """Liveness, readiness (would a new image request be admitted now?) and the metrics of ``state``."""
    router = APIRouter()
    config = state.config

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the model is loaded and a new image request would be admitted",
                responses={503: {"model": ErrorBody}})
    async def readyz() -> dict[str, Any]:
        batcher = state.ready_batcher()
        slots = state.slots
        queued = max(slots.admitted, batcher.pending)
        if slots.uploading >= config.max_uploads or queued >= config.max_queue:
            raise ApiError(503, "busy", f"a new request would be refused now ({slots.uploading}/{config.max_uploads} "
                           f"uploads, {queued}/{config.max_queue} queued)", {"Retry-After": "1"})
        return {"status": "ready", "queue": batcher.pending, "max_queue": config.max_queue,
                "uploads": slots.uploading, "max_uploads": config.max_uploads}

    @router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)

    return router
