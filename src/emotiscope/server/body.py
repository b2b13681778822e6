"""Request bodies are read in full, under limits, before a request may queue for analysis.

BodyReader (ASGI middleware) reads each body before the app sees the request, so a client
that uploads slowly holds no place in the analysis queue. While it reads it enforces:

- the size limit: a declared Content-Length over it is refused before reading, a streamed
  body as it passes it (413);
- a whole-body deadline: a body that has not fully arrived `body_timeout_s` seconds after the
  request started gets 408 and the connection is closed;
- a byte budget: the bytes of all bodies being read, queued or analysed together stay under
  `max_pending_bytes`; a request that would pass it gets 503 with Retry-After.

A refused upload is drained (read and thrown away, up to `drain_bytes` and within the deadline)
before the answer is sent, so clients that only read the answer once they have sent the whole
body (urllib, requests) get the JSON error instead of "connection reset by peer".
"""

from __future__ import annotations

import asyncio
import logging

from .http_errors import ApiError, send_json_error

log = logging.getLogger("emotiscope.server")
MB = 1024 * 1024


def too_large(limit: int) -> str:
    return (f"request body is larger than the {limit / MB:.1f} MB limit; send a smaller or "
            "downscaled image (start the server with --max-upload-mb to raise the limit)")


class ClientGone(Exception):
    """The client closed the connection before its body had arrived."""


class ByteBudget:
    """Bytes of request bodies held in memory, against a fixed capacity (event loop only)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self.reading = 0  # requests whose bodies are being read

    def fits(self, size: int) -> bool:
        return self.held + size <= self.capacity

    def take(self, size: int) -> bool:
        if not self.fits(size):
            return False
        self.held += size
        return True

    def busy(self, retry_after_s: int = 1) -> ApiError:
        return ApiError(503, f"server busy: uploads in progress hold its {self.capacity / MB:.0f} "
                             f"MB memory budget; retry in {retry_after_s} s",
                        {"Retry-After": str(retry_after_s)})


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _has_body(scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in (b"0", b""))


class _Upload:
    """One request's body: read it under the limits, or drain it after a refusal."""

    def __init__(self, scope, receive, config, budget: ByteBudget) -> None:
        self.scope, self.receive, self.budget = scope, receive, budget
        self.limit = config.body_limit(scope["path"])
        self.quoted = config.upload_limit(scope["path"])  # the limit as the user set it
        self.drain_bytes = config.drain_bytes
        self.timeout = config.body_timeout_s
        self.deadline = asyncio.get_running_loop().time() + config.body_timeout_s
        self.declared: int | None = None
        self.received = 0  # bytes of the body that have arrived
        self.held = 0  # bytes of them taken from the budget
        self.complete = False

    async def _next(self) -> bytes:
        """The next piece of the body; 408 past the deadline, ClientGone on a hang-up."""
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(self.receive(), remaining)
        except asyncio.TimeoutError:  # not yet TimeoutError itself on Python 3.10
            of = f" of {self.declared}" if self.declared is not None else ""
            raise ApiError(408, f"the request body did not arrive within {self.timeout:g} s "
                                f"({self.received}{of} bytes received): send it faster, or "
                                "start the server with a longer --body-timeout") from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        self.received += len(chunk)
        self.complete = not message.get("more_body", False)
        return chunk

    async def read(self) -> bytes:
        declared = _header(self.scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "Content-Length is not a number: send the body's size "
                                    "in bytes")
            self.declared = int(declared)
            if self.declared > self.limit:
                raise ApiError(413, too_large(self.quoted))
            if not self.budget.fits(self.declared):
                raise self.budget.busy()
        chunks = []
        while not self.complete:
            chunk = await self._next()
            if self.received > self.limit:
                raise ApiError(413, too_large(self.quoted))
            if not self.budget.take(len(chunk)):
                raise self.budget.busy()
            self.held += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks)

    def release(self) -> None:
        self.budget.held -= self.held
        self.held = 0

    async def drain(self) -> None:
        """Read and drop the rest of a refused body, so that the answer can be read."""
        if self.complete or (self.declared or 0) > self.drain_bytes:
            return
        if self.received == 0 and _header(self.scope, b"expect") == b"100-continue":
            return  # the client waits for "100 Continue" before sending: nothing to drain
        try:
            while not self.complete and self.received <= self.drain_bytes:
                await self._next()
        except (ApiError, ClientGone):
            pass


def _replay(body: bytes, receive):
    """A receive() that gives the whole body once, then passes on (to see disconnects)."""
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BodyReader:
    """ASGI middleware: the app sees a request only once its body is in memory (module doc)."""

    def __init__(self, app, config, budget: ByteBudget) -> None:
        self.app, self.config, self.budget = app, config, budget

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _has_body(scope):
            return await self.app(scope, receive, send)
        upload = _Upload(scope, receive, self.config, self.budget)
        self.budget.reading += 1
        try:
            try:
                body = await upload.read()
            finally:
                self.budget.reading -= 1
        except ApiError as exc:
            upload.release()
            await upload.drain()
            return await send_json_error(send, exc.status, exc.message, exc.headers)
        except ClientGone:
            upload.release()
            log.info("client %s closed the connection during its upload to %s (%d bytes "
                     "received); nothing to answer", _client(scope), scope["path"],
                     upload.received)
            return
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            upload.release()


def _client(scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"
