"""The FastAPI application factory.

    app = create_app()                                  # loads the bundled model at start-up
    app = create_app(EmotionRecognizer(model="m.onnx"))  # or bring your own recognizer
    app = create_app(RecognizerPool.build(2, model="m.onnx"))  # or several: one per core

The model loads once (in the lifespan, or before, when recognizers are passed); inference
runs in worker threads behind an admission gate, so the event loop stays responsive. Each
recognizer analyses one image at a time; `workers` recognizers (default: one per core)
analyse that many at once.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import ConfigError
from ..options import DEFAULT_MAX_PIXELS, RecognizerOptions
from ..types import Recognizer
from ..workers import RecognizerPool, check_workers
from .analysis import Analyzer, model_card
from .body import MB, BodyReader, ByteBudget
from .http_errors import install_handlers
from .limits import Gate, SecurityHeaders
from .routes import STATIC, router

log = logging.getLogger("emotiscope.server")
# what create_app serves: one recognizer, a list or tuple of them, or a pool
OneOrMore: TypeAlias = "Recognizer | list[Recognizer] | tuple[Recognizer, ...] | RecognizerPool[Recognizer]"

MULTIPART_SLACK = 64 * 1024  # room for multipart boundaries and part headers


@dataclass(frozen=True)
class ServerConfig:
    """Limits and resources. Bytes for sizes, pixels (width * height) for max_pixels.

    body_timeout_s: a request's whole body must arrive within it (else 408).
    max_pending_bytes: request bodies held in memory (being read, waiting or analysed)
    together stay under it (else 503); multipart parsing may hold a second copy.
    drain_bytes: at most this much of a refused upload is read and dropped so that the
    client can read the error.
    """

    max_upload_bytes: int = 10 * MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_concurrency: int = min(4, os.cpu_count() or 1)
    queue_limit: int = 256
    max_batch_files: int = 16
    max_batch_bytes: int = 40 * MB
    body_timeout_s: float = 30.0
    max_pending_bytes: int = 256 * MB
    drain_bytes: int = 32 * MB

    def upload_limit(self, path: str) -> int:
        """The limit users set for a request to `path` (what error messages quote)."""
        return self.max_batch_bytes if path == "/v1/analyze/batch" else self.max_upload_bytes

    def body_limit(self, path: str) -> int:
        """The limit enforced on the body: the upload limit and room for multipart framing."""
        return self.upload_limit(path) + MULTIPART_SLACK


def _as_pool(recognizer: OneOrMore) -> RecognizerPool[Recognizer]:
    """A pool from a recognizer, a list or tuple of them, or a pool."""
    if isinstance(recognizer, RecognizerPool):
        return recognizer
    return RecognizerPool(list(recognizer) if isinstance(recognizer, list | tuple) else [recognizer])


def _install(app: FastAPI, pool: RecognizerPool) -> Analyzer:
    app.state.analyzer = Analyzer(pool, app.state.config.max_pixels)
    app.state.card = model_card(pool.first)
    return app.state.analyzer


def _warm_up(pool: RecognizerPool) -> None:
    """One tiny pass each so the first clients do not pay for lazy initialisation."""
    blank = np.zeros((64, 64, 3), np.uint8)
    for recognizer in pool.recognizers:
        try:
            recognizer.classify(blank, recognizer.detect(blank))
        except Exception:  # a broken recognizer fails its requests (as 500s), not the start-up
            log.warning("warm-up pass failed", exc_info=True)
            return


def create_app(recognizer: OneOrMore | None = None, *,
               options: RecognizerOptions | None = None, model=None, detector=None,
               threads: int | None = None, max_upload_bytes: int = 10 * MB,
               max_pixels: int | None = None, max_concurrency: int | None = None,
               queue_limit: int = 256, max_batch_files: int = 16,
               max_batch_bytes: int | None = None, body_timeout_s: float = 30.0,
               max_pending_bytes: int | None = None, drain_bytes: int = 32 * MB,
               workers: int | None = None) -> FastAPI:
    """The web service on `recognizer` (one, a list, or a RecognizerPool). Without it,
    `workers` recognizers (default: one per core) are built at start-up from `options`
    (RecognizerOptions; `model` and `detector` change it) and `threads`. Uploads above
    `max_pixels` are refused (default: the options' max_pixels).

    `max_concurrency` defaults to the larger of the number of recognizers and
    ServerConfig.max_concurrency. `max_pending_bytes` defaults to 256 MB, or room for two of
    the largest batches if more.
    """
    options = (options or RecognizerOptions()).replace(
        **{k: v for k, v in (("model", model), ("detector", detector)) if v is not None})
    max_pixels = max_pixels or options.max_pixels
    pool = None if recognizer is None else _as_pool(recognizer)
    if pool is not None and workers is not None and workers != len(pool):
        raise ConfigError(f"workers={workers} but {len(pool)} recognizer(s) were passed: "
                          "pass that many recognizers (a RecognizerPool), or leave workers out")
    workers = len(pool) if pool is not None else check_workers(workers)
    max_batch_bytes = max_batch_bytes or 4 * max_upload_bytes
    config = _checked(ServerConfig(
        max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
        max_concurrency=max_concurrency or max(workers, ServerConfig.max_concurrency),
        queue_limit=queue_limit, max_batch_files=max_batch_files,
        max_batch_bytes=max_batch_bytes, body_timeout_s=body_timeout_s,
        max_pending_bytes=max_pending_bytes or max(256 * MB, 2 * (max_batch_bytes
                                                                  + MULTIPART_SLACK)),
        drain_bytes=drain_bytes))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        analyzer: Analyzer | None = app.state.analyzer
        if analyzer is None:
            extra = {} if threads is None else {"threads": threads}
            built = await run_in_threadpool(
                lambda: RecognizerPool.build(workers, options=options, **extra))
            analyzer = _install(app, built)
            log.info("model %s loaded (%d workers)", app.state.card["name"], workers)
        await run_in_threadpool(_warm_up, analyzer.pool)
        yield

    app = _assemble(config, lifespan)
    if pool is not None:
        _install(app, pool)
    return app


def _checked(config: ServerConfig) -> ServerConfig:
    largest = config.body_limit("/v1/analyze/batch")
    if config.max_pending_bytes < largest:
        raise ConfigError(f"the upload memory budget ({config.max_pending_bytes / MB:.1f} MB) "
                          f"is below the largest request body ({largest / MB:.1f} MB): raise "
                          "--max-pending-mb or lower --max-upload-mb")
    return config


def _assemble(config: ServerConfig, lifespan) -> FastAPI:
    """The application: its state, routes, static files and middleware (no recognizer yet)."""
    app = FastAPI(title="emotiscope", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Find the faces in an image and the emotion each one shows. "
                              "The browser page is at /; this document at /openapi.json.")
    app.state.config = config
    app.state.gate = Gate(config.max_concurrency, config.queue_limit)
    app.state.budget = ByteBudget(config.max_pending_bytes)
    app.state.analyzer = None
    install_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyReader, config=config, budget=app.state.budget)
    app.add_middleware(SecurityHeaders)
    return app
