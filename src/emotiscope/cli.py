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

COMMANDS = ("predict", "info", "video", "webcam", "serve", "data", "train", "export", "evaluate",
            "runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotiscope", description="Find faces and recognise their emotions.")
    parser.add_argument("--version", action="version", version=f"emotiscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("emotiscope.commands"):
                continue  # command not built yet
            raise
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
    except KeyboardInterrupt:
        print(f"emotiscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `emotiscope predict --json ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
