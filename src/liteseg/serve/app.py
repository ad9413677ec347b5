"""The FastAPI application: one router per API (liteseg's REST v1 in :mod:`.rest`, KServe v2 in :mod:`.kserve`,
PaddleX in :mod:`.paddlex`, health and metrics in :mod:`.health`, the web page in :mod:`.page`) over one shared
:class:`~.state.ServeState`, behind the Host guard and the per-route metrics."""
from __future__ import annotations

import json
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..inference.segmenter import Segmenter
from .config import ServeConfig, build_segmenter
from .error_handlers import add_error_handlers
from .guard import GuardMiddleware
from .health import health_router
from .kserve import v2_router
from .page import page_router
from .paddlex import paddlex_router
from .rest import rest_router
from .route_metrics import MetricsMiddleware
from .state import ServeState
from .telemetry import ServeMetrics, end_with_parent

CONFIG_ENV = "LITESEG_SERVE_CONFIG"
DESCRIPTION = 'PP-LiteSeg semantic segmentation over HTTP. Errors are JSON: `{"error": {"code", "message", "status"}}`.'


def create_app(config: ServeConfig | None = None, segmenter: Segmenter | None = None) -> FastAPI:
    """The API for ``segmenter`` (or the model in ``config``, loaded at startup), batching as ``config`` says."""
    config = config or ServeConfig()
    state = ServeState(config, ServeMetrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        seg = segmenter or await run_in_threadpool(build_segmenter, config)
        state.start(seg)
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)
            if segmenter is None:  # loaded here, so released here
                seg.backend.close()

    app = FastAPI(title="liteseg", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=DESCRIPTION)
    app.add_middleware(GuardMiddleware, allowed_hosts=frozenset(config.allowed_hosts)
                       if config.allowed_hosts is not None else None)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    add_error_handlers(app, state.metrics)
    for router in (page_router(), rest_router(state), health_router(state), v2_router(state, __version__),
                   paddlex_router(state)):
        app.include_router(router)
    return app


def config_to_env(config: ServeConfig) -> str:
    """``config`` as the JSON string :func:`app_from_env` reads from ``$LITESEG_SERVE_CONFIG``."""
    return json.dumps(asdict(config))


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes: the configuration comes from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    end_with_parent()
    return create_app(ServeConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}"))))
