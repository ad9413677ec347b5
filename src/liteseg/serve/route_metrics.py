"""ASGI middleware that counts and times every HTTP request by the route it matched (its template, such as
``/v2/models/{name}``), method and status: a new route is counted under its own name, invented paths as ``other``."""
from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .telemetry import ServeMetrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is "other"


def route_label(scope: Scope) -> str:
    """The path template of the route the router matched (``scope["route"]``), or ``other`` when none did."""
    route = scope.get("route")
    return getattr(route, "path", None) or "other"


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, and times it."""

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

        method = scope["method"] if scope["method"] in METHODS else "other"
        self.metrics.request_started()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:  # the router has put the matched route into the scope by now
            self.metrics.request_finished(route_label(scope), method, status, time.perf_counter() - start)
