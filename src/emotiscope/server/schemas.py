"""Response shapes, for the OpenAPI document (/openapi.json, rendered at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BoxOut(BaseModel):
    """Face box in pixels of the decoded image; (x, y) is the top-left corner."""

    x: int
    y: int
    w: int
    h: int


class FaceOut(BaseModel):
    box: BoxOut
    label: str = Field(description="the most probable emotion")
    score: float = Field(description="probability of `label`, 0..1")
    scores: dict[str, float] = Field(description="probability of every label; they sum to 1")
    track_id: int | None = None
    assumed: bool = Field(False, description="true when no face was detected and the whole image "
                                             "was taken as one face crop (a small, square image)")


class ImageOut(BaseModel):
    width: int
    height: int
    format: str = Field(description="jpeg, png, webp, bmp, tiff, gif, pnm or pam")


class AnalyzeOut(BaseModel):
    image: ImageOut
    faces: list[FaceOut]
    labels: list[str] = Field(description="the model's labels, in its output order")
    timings_ms: dict[str, float] = Field(
        description="queue, decode, detect, classify, annotate (if asked) and total, in ms")


class ErrorDetail(BaseModel):
    status: int
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class BatchItem(BaseModel):
    index: int
    filename: str
    image: ImageOut | None = None
    faces: list[FaceOut] | None = None
    labels: list[str] | None = None
    timings_ms: dict[str, float] | None = None
    error: ErrorDetail | None = Field(None, description="set instead of faces if this image failed")


class BatchOut(BaseModel):
    results: list[BatchItem]
    timings_ms: dict[str, float]


class Health(BaseModel):
    status: str
    model: str
    uploading: int = Field(description="requests whose bodies are still arriving")
    in_flight: int = Field(description="requests with their bodies read: waiting or working")
    waiting: int
    queue_limit: int
    held_bytes: int = Field(description="bytes of request bodies held in memory")


# typed as FastAPI's `responses` parameter is
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut, "description": text} for code, text in {
    408: "the body did not arrive in time", 413: "body or image too large", 415: "not a supported image",
    422: "corrupt image or invalid parameter", 500: "the model failed, or a bug",
    503: "busy: retry after Retry-After seconds",
}.items()}
