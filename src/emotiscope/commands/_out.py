"""Small helpers shared by commands: refuse to overwrite outputs without --force."""

from __future__ import annotations

from pathlib import Path

from ..errors import OutputExistsError


def check_new(path: Path, force: bool) -> Path:
    """Return `path` if writing it loses nothing (absent, or --force); else OutputExistsError."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; pass --force to overwrite it or choose "
                                "another output path")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path
