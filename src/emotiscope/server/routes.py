"""HTTP routes: analyse one image or a batch, the model card, health, the page and docs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from .analysis import MEDIA_TYPES, ms_since
from .http_errors import ApiError, error_body
from .schemas import ERRORS, AnalyzeOut, BatchOut, Health

STATIC = Path(__file__).parent / "static"
CLIENT_GONE = 499  # nginx's code for "client closed the request"; nobody reads it
router = APIRouter()

IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
BATCH_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}


AnnotateParam = Annotated[str, Query(
    description="true or 1: return the annotated image instead of JSON; false or 0: JSON")]
FormatParam = Annotated[str, Query(description="annotated image format: jpeg or png (any case)")]


def strict_bool(name: str, value: str) -> bool:
    """Only true/false/1/0 (any case); anything else is a 422, never silently true."""
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ApiError(422, f"query parameter {name}={value!r} is not a boolean: "
                        "use true, false, 1 or 0")


async def read_images(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    """(filename, bytes) of each uploaded image, each within the per-image size limit."""
    limit = request.app.state.config.max_upload_bytes
    images = await _read_parts(request, max_files)
    for name, data in images:
        if len(data) > limit:
            raise ApiError(413, f"{name} is larger than the {limit / 2**20:.1f} MB per-image "
                                "limit; send a smaller or downscaled image")
    return images


def _multipart_message(detail: str, path: str, max_files: int) -> str:
    """One line for a multipart body the parser refused, saying how to send it instead."""
    if detail.startswith("Too many files"):
        if max_files == 1:
            return (f"{path} takes one image but the request has several file parts: send one "
                    "'file' part, or post them all to /v1/analyze/batch")
        return (f"the batch has more than {max_files} file parts: send at most {max_files} "
                "images per request")
    if detail.startswith("Too many fields"):
        return (f"the multipart body has more than {max_files + 8} fields: send only the "
                "'file' part(s)")
    if detail.startswith("Part exceeded"):
        return ("a text field of the multipart body is over 1 MB: send the image as the file "
                "field 'file' (curl -F file=@photo.jpg), not as text")
    return (f"malformed multipart body ({detail.rstrip('.')}): let the HTTP client build it "
            "(curl -F file=@photo.jpg) rather than setting its Content-Type by hand")


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower-cased (types ignore case)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_parts(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    """Multipart file parts, or the raw body."""
    media = media_type(request)
    if media == "multipart/form-data":
        try:
            form = await request.form(max_files=max_files, max_fields=max_files + 8)
        except HTTPException as exc:  # starlette's bare "Too many files.", "Invalid multipart data."
            raise ApiError(400, _multipart_message(str(exc.detail), request.url.path,
                                                   max_files)) from None
        try:
            parts = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not parts:
                raise ApiError(422, "the multipart body has no file part (a text field is not "
                                    "an upload): send the image as the file field 'file' "
                                    "(curl -F file=@photo.jpg)")
            return [(p.filename or f"image{i}", await p.read()) for i, p in enumerate(parts)]
        finally:
            await form.close()
    if media and not (media.startswith("image/") or media == "application/octet-stream"):
        raise ApiError(415, f"content type {media!r} is not an image: send image bytes "
                            "(image/jpeg, image/png, ...) or multipart/form-data")
    return [("image", await request.body())]


async def client_gone(request: Request) -> bool:
    """True when the client has hung up. uvicorn stops reading a connection once its request
    is complete, so the first check only resumes reading; the hang-up shows one tick later."""
    if await request.is_disconnected():
        return True
    await asyncio.sleep(0)
    return await request.is_disconnected()


def _state(request: Request):
    state = request.app.state
    if state.analyzer is None:
        raise ApiError(503, "the model is still loading; retry in a few seconds",
                       {"Retry-After": "2"})
    return state


@router.post("/v1/analyze", response_model=AnalyzeOut, openapi_extra=IMAGE_BODY, responses={
    200: {"content": {"image/jpeg": {}, "image/png": {}},
          "description": "faces as JSON, or the annotated image with annotate=true"}, **ERRORS})
async def analyze(request: Request, annotate: AnnotateParam = "false",
                  format: FormatParam = "jpeg"):
    """Find the faces in one image and give each face's emotion probabilities."""
    want_image = strict_bool("annotate", annotate)
    if format.strip().lower() not in MEDIA_TYPES:
        raise ApiError(422, f"format={format!r} is not supported: use jpeg or png")
    format = format.strip().lower()
    state = _state(request)
    async with state.gate.admit():
        images = await read_images(request, max_files=1)
        start = time.perf_counter()
        async with state.gate.work():
            queued = ms_since(start)
            if await client_gone(request):  # gave up while queued: skip the work
                return Response(status_code=CLIENT_GONE)
            result, picture = await run_in_threadpool(
                state.analyzer.analyze, images[0][1], format if want_image else None)
    result["timings_ms"]["queue"] = queued
    if picture is not None:
        return Response(picture, media_type=MEDIA_TYPES[format],
                        headers={"X-Emotiscope-Faces": str(len(result["faces"]))})
    return JSONResponse(result)


def _batch(analyzer, images: list[tuple[str, bytes]]) -> list[dict]:
    results = []
    for index, (name, data) in enumerate(images):
        item = {"index": index, "filename": name}
        try:
            item.update(analyzer.analyze(data)[0])
        except ApiError as exc:
            item.update(error_body(exc.status, exc.message))
        results.append(item)
    return results


@router.post("/v1/analyze/batch", response_model=BatchOut, openapi_extra=BATCH_BODY,
             responses=ERRORS)
async def analyze_batch(request: Request):
    """Several images (multipart, each as a 'file' part) in one request; one result each."""
    state = _state(request)
    config = state.config
    if image_options := sorted({"annotate", "format"} & set(request.query_params)):
        raise ApiError(422, f"{'= and '.join(image_options)}= are for /v1/analyze (one image): "
                            "a batch answers JSON only; post each image to /v1/analyze for its "
                            "annotated copy")
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, "a batch must be multipart/form-data with one 'file' part per image")
    async with state.gate.admit():
        images = await read_images(request, max_files=config.max_batch_files)
        start = time.perf_counter()
        async with state.gate.work():
            queued = ms_since(start)
            if await client_gone(request):
                return Response(status_code=CLIENT_GONE)
            results = await run_in_threadpool(_batch, state.analyzer, images)
    return JSONResponse({"results": results, "timings_ms": {"queue": queued,
                                                             "total": ms_since(start)}})


@router.get("/v1/model")
async def model(request: Request) -> dict:
    """The model card: labels, input contract, architecture, training recipe and metrics."""
    return _state(request).card


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> dict:
    """Liveness and load: uploads being read, requests in flight and waiting, bytes held."""
    state = _state(request)
    return {"status": "ok", "model": state.card["name"], "uploading": state.budget.reading,
            "in_flight": state.gate.pending, "waiting": state.gate.waiting,
            "queue_limit": state.gate.queue_limit, "held_bytes": state.budget.held}


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    return FileResponse(STATIC / "docs.html", media_type="text/html")


# HEAD on every GET endpoint (uptime monitors, `curl -I`): answered as GET, without the body
for _route in list(router.routes):
    if isinstance(_route, APIRoute) and "GET" in (_route.methods or ()):
        router.add_api_route(_route.path, _route.endpoint, methods=["HEAD"],
                             include_in_schema=False)
