"""The FastAPI application factory.

    app = create_app()                                  # loads the bundled model at start-up
    app = create_app(EmotionRecognizer(model="m.onnx"))  # or bring your own recognizer

The model loads once (in the lifespan, or before, when a recognizer is passed); inference
runs in worker threads behind an admission gate, so the event loop stays responsive.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from .analysis import Analyzer, model_card
from .http_errors import install_handlers
from .limits import MB, BodyLimit, Gate, SecurityHeaders
from .routes import STATIC, router

log = logging.getLogger("emotiscope.server")

MULTIPART_SLACK = 64 * 1024  # room for multipart boundaries and part headers


@dataclass(frozen=True)
class ServerConfig:
    """Limits and resources. Bytes for sizes, pixels (width * height) for max_pixels."""

    max_upload_bytes: int = 10 * MB
    max_pixels: int = 40_000_000
    max_concurrency: int = min(4, os.cpu_count() or 1)
    queue_limit: int = 256
    max_batch_files: int = 16
    max_batch_bytes: int = 40 * MB

    def body_limit(self, path: str) -> int:
        if path == "/v1/analyze/batch":
            return self.max_batch_bytes + MULTIPART_SLACK
        return self.max_upload_bytes + MULTIPART_SLACK


def _install(app: FastAPI, recognizer) -> None:
    app.state.analyzer = Analyzer(recognizer, app.state.config.max_pixels)
    app.state.card = model_card(recognizer)


def _warm_up(recognizer) -> None:
    """One tiny pass so the first client does not pay for lazy initialisation."""
    blank = np.zeros((64, 64, 3), np.uint8)
    try:
        recognizer.classify(blank, recognizer.detect(blank))
    except Exception:  # a broken recognizer fails its requests (as 500s), not the start-up
        log.warning("warm-up pass failed", exc_info=True)


def create_app(recognizer=None, *, model=None, detector: str = "auto",
               threads: int | None = None, max_upload_bytes: int = 10 * MB,
               max_pixels: int = 40_000_000, max_concurrency: int | None = None,
               queue_limit: int = 256, max_batch_files: int = 16,
               max_batch_bytes: int | None = None) -> FastAPI:
    """The web service. Without `recognizer`, one is built from `model`/`detector` at start-up."""
    config = ServerConfig(
        max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
        max_concurrency=max_concurrency or ServerConfig.max_concurrency,
        queue_limit=queue_limit, max_batch_files=max_batch_files,
        max_batch_bytes=max_batch_bytes or 4 * max_upload_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.analyzer is None:
            from ..pipeline import EmotionRecognizer

            built = await run_in_threadpool(
                lambda: EmotionRecognizer(model=model, detector=detector, threads=threads))
            _install(app, built)
            log.info("model %s loaded", app.state.card["name"])
        await run_in_threadpool(_warm_up, app.state.analyzer.recognizer)
        yield

    app = FastAPI(title="emotiscope", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Find the faces in an image and the emotion each one shows. "
                              "The browser page is at /; this document at /openapi.json.")
    app.state.config = config
    app.state.gate = Gate(config.max_concurrency, config.queue_limit)
    app.state.analyzer = None
    if recognizer is not None:
        _install(app, recognizer)
    install_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit_for=config.body_limit)
    app.add_middleware(SecurityHeaders)
    return app
