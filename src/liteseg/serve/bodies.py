"""Reading request bodies with a size limit (every upload route: ``/v1/segment``, v2 ``infer``, PaddleX)."""
from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing more than ``max_bytes`` (declared in Content-Length or streamed) with a 413."""
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
    return b"".join(chunks)
