"""JSON errors for the web service: one shape for every failure, never a traceback.

Every error response body is `{"error": {"status": 413, "type": "payload_too_large",
"message": "..."}}`, where the message says what was wrong and how to fix it, in one line.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ImageTooLargeError, InputError, UnsupportedImageError

log = logging.getLogger("emotiscope.server")

TYPES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
         408: "request_timeout", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "unprocessable",
         500: "internal_error", 503: "busy"}


class ApiError(Exception):
    """An error the service reports to its client as JSON with an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def input_status(exc: InputError) -> int:
    """The HTTP status for an unusable input: 413 for too many pixels, 415 for an image format
    or layout emotiscope does not read, 422 for everything else (corrupt, truncated, ...)."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, UnsupportedImageError):
        return 415
    return 422


def first_line(exc: Exception, default: str = "invalid input") -> str:
    """An exception's message as one line (never a traceback)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


def error_body(status: int, message: str) -> dict:
    return {"error": {"status": status, "type": TYPES.get(status, "error"), "message": message}}


def error_bytes(status: int, message: str) -> bytes:
    return json.dumps(error_body(status, message)).encode()


async def send_json_error(send, status: int, message: str,
                          headers: dict[str, str] | None = None) -> None:
    """Answer with the JSON error shape from ASGI middleware, and close the connection
    (used before the request body has been read, or with part of it unread)."""
    body = error_bytes(status, message)
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


ENDPOINTS = ("the API is POST /v1/analyze, POST /v1/analyze/batch, GET /v1/model and "
             "GET /healthz (see /docs)")


def _http_message(request: Request, exc: HTTPException, headers: dict | None) -> str:
    """Starlette's bare "Not Found" / "Method Not Allowed" as what was asked and what exists."""
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return f"no such page or endpoint: {where}; {ENDPOINTS}"
    if exc.status_code == 405:
        allowed = (headers or {}).get("Allow", "")
        return f"{where} is not allowed: {request.url.path} accepts {allowed or 'other methods'}"
    return exc.detail if isinstance(exc.detail, str) else "request failed"


def install_handlers(app: FastAPI) -> None:
    """Map every exception to the JSON error shape; unexpected ones become a bare 500."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError):
        return error_response(input_status(exc), first_line(exc, "invalid image"))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        return error_response(422, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, _http_message(request, exc, headers), headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")
