"""ASGI middleware in front of the API: the Host check against DNS rebinding, and JSON when shutdown cuts a request.

A server bound to loopback trusts whoever can reach it, and a web page can reach it through DNS rebinding (its
own host name re-pointed at 127.0.0.1): such requests carry the page's name in ``Host``, so a loopback-bound
server answers only ``Host`` values that name loopback (421 otherwise). When ``--shutdown-timeout`` expires,
uvicorn cancels the requests still running; the client gets a JSON 503 instead of a plain-text 500.
"""
from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

log = logging.getLogger("liteseg")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def host_name(value: str) -> str:
    """A Host header without its port, lower-cased (``[::1]:8000`` -> ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class GuardMiddleware:
    """Refuses ``Host`` values outside ``allowed_hosts`` (None: any) and answers cancelled requests with JSON."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None = None) -> None:
        self.app, self.allowed_hosts = app, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed_hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed_hosts:
                await _send_error(send, ApiError(421, "host_not_allowed", f"this server answers only requests "
                                  f"addressed to {', '.join(sorted(self.allowed_hosts))}, not Host {host!r} "
                                  "(it binds a loopback address; DNS rebinding is refused)"))
                return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            if not started:
                log.warning("%s %s cut by the shutdown timeout", scope["method"], scope["path"])
                await _send_error(send, ApiError(503, "shutting_down", "the server stopped before this request "
                                  "finished (--shutdown-timeout); retry on another instance", {"Retry-After": "1"}))
            raise


async def _send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
