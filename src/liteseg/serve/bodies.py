"""Reading request bodies with a size limit and a minimum pace (every upload route: ``/v1/segment``, v2
``infer``, PaddleX)."""
from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError
from .slow_clients import UPLOAD_GRACE_S, UPLOAD_MIN_RATE, read_paced


async def read_body(request: Request, max_bytes: int, grace_s: float = UPLOAD_GRACE_S,
                    min_rate: float = UPLOAD_MIN_RATE) -> bytes:
    """The request body, refusing more than ``max_bytes`` (declared in Content-Length or streamed) with a 413 and
    a client slower than ``min_rate`` bytes/s after ``grace_s`` seconds with a 408."""
    too_large = ApiError(413, "upload_too_large", f"the upload is larger than {max_bytes} bytes "
                         f"({max_bytes / 2**20:g} MiB, --max-upload-mb); send a smaller or compressed image")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    return await read_paced(request, max_bytes, too_large, grace_s, min_rate)
