"""Writing results safely: every output file appears whole or not at all, and file names that are
not valid UTF-8 can still be printed.

An output is written to a hidden temporary file in the same folder (same suffix, so encoders
that pick the format from the name still work) and renamed over the target with `os.replace`,
which is atomic on POSIX and Windows: a run killed mid-write leaves the previous file (or none),
never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


def _write_error(path: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write {display(path)}: {exc.strerror or exc}; choose another "
                      "output path or free some space")


def temp_beside(path: Path) -> Path:
    """A new hidden name in `path`'s folder with the same suffix (encoders pick the format from
    it): ".NAME.RANDOM.tmpSUFFIX", with "output" for NAME when the name is not valid UTF-8."""
    try:
        stem = path.stem.encode("utf-8") and path.stem
    except UnicodeEncodeError:
        stem = "output"
    return path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is
    removed and `path` is left as it was. OSError becomes a one-line InputError."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()  # absent after a successful replace


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    """Indented JSON; names that are not valid UTF-8 must already be made printable."""
    return write_text(path, json.dumps(obj, indent=2))


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """matplotlib `fig.savefig` through a temporary file (the format follows the suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or None, **kwargs)
    return path


def display(name: str | os.PathLike) -> str:
    """A file name as printable text: bytes that are not valid UTF-8 (decoded by Python as lone
    surrogates) become backslash escapes, e.g. b'caf\\xe9.jpg' -> 'caf\\\\xe9.jpg'."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def check_writable_folder(folder: str | os.PathLike, flag: str) -> Path:
    """Fail early, before any work, when `folder` cannot be created or written to."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {display(folder)}: {display(existing)} is a file, not a folder; "
                         "choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {display(folder)}: {display(existing)} is not writable; choose "
                         "another output folder")
    return folder
