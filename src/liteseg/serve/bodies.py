"""Reading request bodies with a size limit and a minimum pace (every upload route: ``/v1/segment``, v2
``infer``, PaddleX), and the image of a ``/v1/segment`` upload (multipart or the raw body)."""
from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from .errors import ApiError
from .slow_clients import UPLOAD_GRACE_S, UPLOAD_MIN_RATE, read_paced

RAW_TYPES = ("application/octet-stream",)


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


async def read_upload(request: Request, max_bytes: int, grace_s: float = UPLOAD_GRACE_S,
                      min_rate: float = UPLOAD_MIN_RATE) -> bytes:
    """The image bytes of a multipart (first file part) or raw-body upload, refusing more than ``max_bytes`` and
    uploads slower than ``min_rate`` bytes/s after ``grace_s`` seconds."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = content_type == "multipart/form-data"
    if not (multipart or content_type.startswith("image/") or content_type in RAW_TYPES):
        raise ApiError(415, "unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not accepted; "
                       "send multipart/form-data with the image in field 'image', or the raw image bytes with "
                       "Content-Type image/png, image/jpeg, ... or application/octet-stream")
    body = await read_body(request, max_bytes, grace_s, min_rate)
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
