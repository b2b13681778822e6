"""Command line: thin. Parse arguments, call the API, print or write.

Each sub-command lives in emotiscope/commands/<name>.py with `register(subparsers)`, which adds
its parser and sets `func(args) -> int`. Exit codes: 0 ok, 1 a run failed (or some inputs did),
2 usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .errors import ConfigError, EmotiscopeError

# Optional dependencies (top-level module -> the extra that installs it): a command that needs
# a missing one ends with a one-line hint; any other failed import is a bug and is raised.
OPTIONAL = {"torch": "train", "onnx": "train", "fastapi": "serve", "uvicorn": "serve",
            "starlette": "serve", "multipart": "serve", "python_multipart": "serve", "av": "video",
            "pyarrow": "batch", "ray": "ray"}

COMMANDS = ("predict", "info", "video", "webcam", "serve", "data", "train", "export", "evaluate",
            "runs", "batch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotiscope", description="Find faces and recognise their emotions.")
    parser.add_argument("--version", action="version", version=f"emotiscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        # Command modules import only the standard library and emotiscope's light modules at
        # the top (their dependencies load when they run), so any failure here is a bug and
        # is raised, never a command silently left out.
        module = importlib.import_module(f".commands.{name}", __package__)
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, recorded by `train` in the model
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # A file name that is not valid UTF-8 reaches Python as lone surrogates; commands print
        # names through outputs.display, and this keeps any other one from crashing the print.
        sys.stdout.reconfigure(errors="backslashreplace")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="emotiscope: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"emotiscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except EmotiscopeError as exc:
        print(f"emotiscope {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        extra = OPTIONAL.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"emotiscope {args.command}: error: {exc.name} is not installed; "
              f'pip install ".[{extra}]" in the emotiscope clone', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"emotiscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `emotiscope predict --json ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
