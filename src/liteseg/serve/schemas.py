"""Response bodies as pydantic models: they document the API in the OpenAPI schema."""
from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable name, e.g. invalid_image, image_too_large, queue_full")
    message: str = Field(description="what went wrong and what to do")
    status: int = Field(description="the HTTP status code")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Rle(BaseModel):
    size: list[int] = Field(description="[height, width]")
    counts: list[int] = Field(description="COCO uncompressed RLE: column-major run lengths, starting with a 0-run")


class ClassResult(BaseModel):
    id: int
    name: str
    color: list[int] = Field(description="RGB palette colour")
    pixels: int
    share: float = Field(description="fraction of the image's pixels")
    rle: Rle | None = Field(None, description="the class mask, with rle=true")


class SegmentBody(BaseModel):
    width: int
    height: int
    classes: list[ClassResult] = Field(description="classes present in the image, by id")
    notes: list[str] = Field(description="conversions applied to the upload (grayscale, alpha, 16-bit)")
    overlay_png: str | None = Field(None, description="base64 PNG of the overlay, with overlay=true")


class ClassInfo(BaseModel):
    id: int
    name: str
    color: list[int]


class ModelInfo(BaseModel):
    name: str
    arch: str
    about: str = Field(description='what the model is for, e.g. "PP-LiteSeg-T, CamVid street scenes, 11 classes, '
                                   '480x360"')
    backend: str
    num_classes: int
    classes: list[ClassInfo]
    input_shape: list[int] = Field(description="[N, 3, H, W]; -1 marks a free dimension")
    input_size: list[int] | None = Field(description="[H, W] every image is resized to, or null for any size")
    mean: list[float]
    std: list[float]
    trained: bool = Field(description="false for random placeholder weights")
    max_batch: int
    limits: dict[str, int | float]
