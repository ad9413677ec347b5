"""The web page at ``/``: upload an image in the browser and see its segmentation (``static/index.html``)."""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse


def page_router() -> APIRouter:
    """``GET /``: the page, read once."""
    router = APIRouter()
    html = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(html)

    return router
