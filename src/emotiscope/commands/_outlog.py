"""The record of the annotated copies `predict --out DIR` wrote: DIR/.emotiscope-outputs.

An annotated copy keeps its input's name, so nothing in a file itself tells a copy from a photo.
When --out lies among the inputs (`predict photos/ --out photos/annotated`), a later run must
not analyse its earlier copies, yet must not take an original photo that happens to sit there
(`--out photos/best`) for one either, nor overwrite it. The record settles it: one line per copy
written, in `sha256sum` format (hex digest, two spaces, the path relative to DIR), so a file is
an earlier copy only while it is listed and still has the listed content.

Lines are appended as copies are written (one short write each, in input order), so a killed
run still records what it wrote; a torn last line is ignored, and the last line of a path wins.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ..errors import OutputError
from ..outputs import display, write_error

NAME = ".emotiscope-outputs"
HEADER = (b"# annotated copies written by `emotiscope predict --out` (sha256, path): not read as "
          b"input again while unchanged\n")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_record(folder: Path) -> Path:
    """The record's path in `folder`, which must be absent or a regular file: a link there would
    have the record read from, and lines appended to, whatever it points at (an input photo)."""
    record = folder / NAME
    try:
        mode = record.lstat().st_mode
    except OSError:
        return record  # absent (or unreadable: reading and appending report it)
    if not stat.S_ISREG(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise OutputError(f"--out {display(folder)}: its record {display(record)} is {what}; "
                          "remove it, or choose another --out")
    return record


def _recorded(folder: Path) -> dict[Path, str]:
    """Resolved path -> sha256 of each copy listed in `folder`'s record (empty: no record)."""
    record = check_record(folder)
    try:
        fd = os.open(record, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError:
        return {}
    found = {}
    for line in lines:
        digest, sep, name = line.partition(b"  ")
        if sep and len(digest) == 64 and name and not line.startswith(b"#"):
            try:
                found[(folder / os.fsdecode(name)).resolve()] = digest.decode("ascii", "replace")
            except (ValueError, RuntimeError, OSError):
                pass  # a NUL byte or a link loop: names no copy we wrote
    return found


def earlier_outputs(folder: Path, paths: list[Path]) -> set[Path]:
    """Those of `paths` that are copies an earlier run wrote into `folder`, unchanged since."""
    recorded = _recorded(folder)
    if not recorded:
        return set()
    earlier = set()
    for path in paths:
        digest = recorded.get(path.resolve())
        try:
            if digest is not None and _sha256(path) == digest:
                earlier.add(path)
        except OSError:
            pass  # unreadable: analysing it reports why
    return earlier


class OutputLog:
    """Appends the copies written into `folder` to its record."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        check_record(folder)  # before any copy is written, so that none goes unlisted

    def add(self, path: Path) -> None:
        name = os.fsencode(os.path.relpath(path, self.folder))
        if b"\n" in name:
            return  # cannot be listed: a later run reads it as a photo, which is the safe side
        record = check_record(self.folder)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            line = _sha256(path).encode("ascii") + b"  " + name + b"\n"
            with open(os.open(record, flags, 0o666), "ab") as fh:
                new = os.fstat(fh.fileno()).st_size == 0
                fh.write((HEADER if new else b"") + line)
        except OSError as exc:
            raise write_error(record, exc) from exc
