"""Small helpers shared by commands: refuse to overwrite outputs without --force, and refuse
outputs that cannot be written before any work is done."""

from __future__ import annotations

from pathlib import Path

from ..errors import OutputExistsError
from ..outputs import check_writable_folder, display


def check_new(path: Path, force: bool, flag: str = "--out") -> Path:
    """Return `path` if writing it loses nothing (absent, or --force) and its folder can be
    written; else OutputExistsError / InputError."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{flag} {display(path)} is a folder; give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{display(path)} already exists; pass --force to overwrite it or "
                                "choose another output path")
    check_writable_folder(path.parent, flag)
    return path
