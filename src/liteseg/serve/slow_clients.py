"""Slow clients cannot hold the server: request headers and bodies must arrive at a minimum pace.

* :class:`HeaderTimeoutProtocol`: uvicorn's h11 protocol, closing connections whose request headers are not
  complete within :data:`HEADER_TIMEOUT_S` of the first byte (or of the connection); uvicorn itself only times
  out idle keep-alive connections, so 100 connections with unfinished headers stayed open forever.
* :func:`read_paced`: an upload must keep up ``min_rate`` bytes/s after a ``grace_s`` start (else 408), and
  a client that goes away is answered as such (499), not as a server error.
"""
from __future__ import annotations

import asyncio
from typing import Any

import h11
from starlette.requests import ClientDisconnect, Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import ApiError

HEADER_TIMEOUT_S = 10.0
UPLOAD_GRACE_S = 10.0
UPLOAD_MIN_RATE = 16 * 1024  # bytes/s


class HeaderTimeoutProtocol(H11Protocol):
    """H11Protocol with a deadline for each request's headers (``uvicorn.run(..., http=HeaderTimeoutProtocol)``)."""

    header_timeout = HEADER_TIMEOUT_S

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:  # between requests: these bytes start headers
            self._arm()
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are complete
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not (self.cycle is None or self.cycle.response_complete):
            return
        self.logger.info("closing a connection whose request headers took over %g s", self.header_timeout)
        if self.conn.our_state in (h11.IDLE, h11.DONE) and self.conn.their_state != h11.ERROR:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        self.transport.close()


async def read_paced(request: Request, max_bytes: int, too_large: ApiError, grace_s: float,
                     min_rate: float) -> bytes:
    """The request body, refusing more than ``max_bytes`` and a client slower than ``min_rate`` bytes/s (after
    ``grace_s`` seconds) with a 408; a disconnect raises a 499 :class:`ApiError` (logged, not an error)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        remaining = start + grace_s + size / min_rate - loop.time()  # when the next byte is due
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            chunk = await asyncio.wait_for(stream.__anext__(), remaining)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise ApiError(408, "upload_too_slow", f"the upload arrived too slowly ({size} bytes in "
                           f"{loop.time() - start:.0f} s; the server needs {min_rate / 1024:g} KiB/s after the first "
                           f"{grace_s:g} s); retry on a faster connection", {"Connection": "close"}) from None
        except ClientDisconnect:
            raise ApiError(499, "client_disconnected", f"the client went away after {size} bytes") from None
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
