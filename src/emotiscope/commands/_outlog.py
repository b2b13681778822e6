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
from pathlib import Path

from ..outputs import _write_error

NAME = ".emotiscope-outputs"
HEADER = (b"# annotated copies written by `emotiscope predict --out` (sha256, path): not read as "
          b"input again while unchanged\n")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recorded(folder: Path) -> dict[Path, str]:
    """Resolved path -> sha256 of each copy listed in `folder`'s record (empty: no record)."""
    try:
        lines = (folder / NAME).read_bytes().split(b"\n")
    except OSError:
        return {}
    found = {}
    for line in lines:
        digest, sep, name = line.partition(b"  ")
        if sep and len(digest) == 64 and name and not line.startswith(b"#"):
            found[(folder / os.fsdecode(name)).resolve()] = digest.decode("ascii", "replace")
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

    def add(self, path: Path) -> None:
        name = os.fsencode(os.path.relpath(path, self.folder))
        if b"\n" in name:
            return  # cannot be listed: a later run reads it as a photo, which is the safe side
        record = self.folder / NAME
        try:
            line = _sha256(path).encode("ascii") + b"  " + name + b"\n"
            new = not record.exists()
            with open(record, "ab") as fh:
                fh.write((HEADER if new else b"") + line)
        except OSError as exc:
            raise _write_error(record, exc) from exc
