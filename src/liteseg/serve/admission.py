"""Admission limits every image route shares (``/v1/segment``, v2 ``infer``, PaddleX): bodies being received
(``--max-uploads``) and images past upload, being decoded, segmented or encoded (``--max-queue``)."""
from __future__ import annotations

from contextlib import asynccontextmanager, contextmanager
from typing import AsyncIterator, Iterator

from starlette.requests import Request

from .batcher import DynamicBatcher
from .bodies import read_body
from .errors import ApiError
from .slow_clients import UPLOAD_GRACE_S, UPLOAD_MIN_RATE


class Admission:
    """Counts uploads and admitted images; over a limit, a request gets a 503 with ``Retry-After``."""

    def __init__(self, max_uploads: int, max_queue: int, grace_s: float = UPLOAD_GRACE_S,
                 min_rate: float = UPLOAD_MIN_RATE) -> None:
        self.max_uploads, self.max_queue = max_uploads, max_queue
        self.grace_s, self.min_rate = grace_s, min_rate  # the pace an upload must keep (bytes/s after grace_s)
        self.uploading = 0  # bodies being received
        self.admitted = 0  # images being decoded, segmented or encoded

    @asynccontextmanager
    async def upload(self) -> AsyncIterator[None]:
        """One upload slot while the body arrives (slow uploads wait here, not in the inference queue)."""
        if self.uploading >= self.max_uploads:
            raise ApiError(503, "uploads_full", f"{self.uploading} uploads are being received (limit "
                           f"{self.max_uploads}, --max-uploads); retry shortly", {"Retry-After": "1"})
        self.uploading += 1
        try:
            yield
        finally:
            self.uploading -= 1

    async def body(self, request: Request, max_bytes: int) -> bytes:
        """The request body, received in an upload slot at the required pace (:func:`.bodies.read_body`)."""
        async with self.upload():
            return await read_body(request, max_bytes, self.grace_s, self.min_rate)

    @contextmanager
    def admit(self, batcher: DynamicBatcher) -> Iterator[None]:
        """One image past upload (bounds decoded images in memory, not only those in the batcher)."""
        if self.admitted >= self.max_queue:
            raise batcher.queue_full(self.admitted)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1
