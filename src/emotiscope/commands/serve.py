"""`emotiscope serve`: the browser page and the HTTP API, on one recognizer per core.

    emotiscope serve                      # http://127.0.0.1:8000/  (API docs at /docs)
    emotiscope serve --host 0.0.0.0 --port 9000 --model my.onnx
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import sys

from ..errors import ConfigError, DependencyError
from ..options import add_recognizer_flags, finite_float, options_from_args, positive_int

# pip name -> import names (python-multipart was imported as `multipart` before 0.0.13)
NEEDED = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",),
          "python-multipart": ("python_multipart", "multipart")}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="start the web page and HTTP API",
        description="Serve the browser page (upload a photo or use the camera) and the HTTP "
                    "API (POST /v1/analyze). Binds to 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--max-upload-mb", type=finite_float, default=10.0, metavar="MB",
                   help="largest accepted image, in MB (default 10); bigger ones get 413")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="recognizers, each analysing one image at a time (default: one per CPU "
                        "core; 1 = one recognizer using all cores for each image)")
    p.add_argument("--workers-threads", type=int, default=None, metavar="N",
                   help="requests admitted to work at once, decoding included (default: "
                        "--workers or CPU cores up to 4, whichever is more)")
    p.add_argument("--queue-limit", type=int, default=256, metavar="N",
                   help="requests allowed to wait; more get 503 + Retry-After (default 256)")
    p.add_argument("--body-timeout", type=finite_float, default=30.0, metavar="S",
                   help="seconds a request's whole body may take to arrive; slower uploads "
                        "get 408 (default 30)")
    p.add_argument("--max-pending-mb", type=finite_float, default=None, metavar="MB",
                   help="memory for request bodies being received, waiting or analysed, in "
                        "MB; uploads beyond it get 503 + Retry-After (default 256, or two "
                        "of the largest batches if more)")
    add_recognizer_flags(p)
    p.set_defaults(func=run)


def check_dependencies() -> None:
    missing = [pip for pip, modules in NEEDED.items()
               if not any(importlib.util.find_spec(m) for m in modules)]
    if missing:
        raise DependencyError(f"emotiscope serve needs {', '.join(missing)}, which are not "
                              'installed: pip install ".[serve]" in the emotiscope clone')


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is out of range: use 1..65535")
    if not args.max_upload_mb > 0:
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb} must be above 0")
    if args.workers_threads is not None and args.workers_threads < 1:
        raise ConfigError(f"--workers-threads {args.workers_threads} must be 1 or more")
    if args.queue_limit < 0:
        raise ConfigError(f"--queue-limit {args.queue_limit} must be 0 or more")
    if not args.body_timeout > 0:
        raise ConfigError(f"--body-timeout {args.body_timeout} must be above 0 seconds")
    if args.max_pending_mb is not None and not args.max_pending_mb > 0:
        raise ConfigError(f"--max-pending-mb {args.max_pending_mb} must be above 0")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    _check(args)
    check_dependencies()
    from ..server import create_app, runner
    from ..workers import RecognizerPool

    mb = 1024 * 1024
    pending = int(args.max_pending_mb * mb) if args.max_pending_mb else None
    sock = runner.bind(args.host, args.port)  # a taken port: one line, exit 1
    try:
        options = options_from_args(args)
        pool = RecognizerPool.build(args.workers, options=options)  # errors: exit 1
        app = create_app(pool, options=options, max_upload_bytes=int(args.max_upload_mb * mb),
                         max_concurrency=args.workers_threads, queue_limit=args.queue_limit,
                         body_timeout_s=args.body_timeout, max_pending_bytes=pending)
    except BaseException:
        sock.close()
        raise
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"emotiscope serve: page http://{shown}:{args.port}/ , API docs "
          f"http://{shown}:{args.port}/docs ; Ctrl+C stops", file=sys.stderr)
    if not _is_loopback(args.host):
        print(f"emotiscope serve: warning: listening on {args.host}: other machines can reach "
              "it; browsers allow the camera only on https or localhost", file=sys.stderr)
    with sock:
        runner.serve(app, sock, log_level="info" if args.verbose else "warning",
                     access_log=bool(args.verbose), timeout_graceful_shutdown=5)
    return 0
