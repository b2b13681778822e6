"""Limits that keep the service alive under abuse: an admission gate, security headers.

Gate admits `concurrency` requests to work at once and lets at most `queue_limit` more
wait; the rest get 503 with Retry-After instead of piling up. A request reaches the gate
only once its body has been read (body.BodyReader), so slow uploads hold no place in it.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from .http_errors import ApiError


class SecurityHeaders:
    """ASGI middleware: nosniff everywhere; a strict same-origin CSP on the page's files."""

    CSP = (b"default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
           b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        page = not scope["path"].startswith("/v1/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if page:
                    headers.append((b"content-security-policy", self.CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Gate:
    """At most `concurrency` requests work at once; at most `queue_limit` more wait."""

    def __init__(self, concurrency: int, queue_limit: int, retry_after_s: int = 1) -> None:
        if concurrency < 1 or queue_limit < 0:
            raise ValueError("need concurrency >= 1 and queue_limit >= 0")
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.retry_after_s = retry_after_s
        self.pending = 0  # waiting + working; only touched on the event loop thread
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:  # a new event loop (tests run several)
            self._semaphore, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._semaphore

    @property
    def waiting(self) -> int:
        return max(0, self.pending - self.concurrency)

    @asynccontextmanager
    async def admit(self):
        """Count a request from when its body has been read until it is answered."""
        if self.pending >= self.concurrency + self.queue_limit:
            raise ApiError(503, f"server busy: {self.queue_limit} requests already wait; "
                                f"retry in {self.retry_after_s} s",
                           {"Retry-After": str(self.retry_after_s)})
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    @asynccontextmanager
    async def work(self):
        """Wait for one of the `concurrency` working places."""
        async with self._sem():
            yield
