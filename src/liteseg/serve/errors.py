"""Errors the HTTP API turns into JSON bodies: ``{"error": {"code": ..., "message": ...}}`` with a status code."""
from __future__ import annotations

from ..errors import LitesegError


class ApiError(LitesegError):
    """A request that cannot be served: ``status`` is the HTTP status, ``code`` a stable machine-readable name."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, object]]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}
