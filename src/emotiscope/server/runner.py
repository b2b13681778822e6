"""Running the app with uvicorn: bind the port ourselves (a clear error when it is taken) and
answer requests that cannot even be parsed with the service's JSON error shape."""

from __future__ import annotations

import errno
import socket

from ..errors import ServiceError
from .http_errors import error_bytes

UNPARSABLE = ("malformed HTTP request (request line, a header or Content-Length); send a "
              "well-formed HTTP/1.1 request")


def json_error_protocol() -> type:
    """uvicorn's HTTP protocol (httptools if installed, else h11) with a JSON 400 for
    requests its parser rejects, instead of uvicorn's plain-text one."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class JsonErrorProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def send_400_response(self, msg: str) -> None:
            body = error_bytes(400, UNPARSABLE)
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
            self.transport.close()

    return JsonErrorProtocol


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; ServiceError (exit 1) naming the option to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as exc:
        sock.close()
        code = getattr(exc, "errno", None)
        if code == errno.EADDRINUSE:
            raise ServiceError(f"port {port} on {host} is already in use (another server?): stop "
                              "it or choose a free port with --port") from None
        if code == errno.EACCES:
            raise ServiceError(f"no permission to listen on port {port}: choose a port above "
                              "1023 with --port") from None
        reason = getattr(exc, "strerror", None) or exc  # an OverflowError has no strerror
        raise ServiceError(f"cannot listen on {host} port {port} ({reason}): check "
                          "--host and --port") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app, **options):
    """uvicorn.Config for `app` with the JSON-400 protocol; `options` pass through."""
    import uvicorn

    return uvicorn.Config(app, http=json_error_protocol(), **options)


def serve(app, sock: socket.socket, **options) -> None:
    """Serve `app` on the bound `sock` until interrupted."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, **options)).run(sockets=[sock])
