"""The files of a folder (predict's and batch's folder inputs), each with its real path, at about
one system call a file: listing dominates for archives of millions of files.

A file's real path is what Path.resolve gives (the key that makes each file count once, however
it was named). Below a folder only links can lead elsewhere, as links to folders are not
followed: a plain file's real path is its folder's real path joined with its name, so only the
folder itself and links are resolved.
"""

from __future__ import annotations

import os
from operator import itemgetter
from pathlib import Path


def real_path(path: Path) -> str:
    """What `path.resolve()` gives, as text."""
    return str(path.resolve())


def folder_files(root: Path, suffixes: frozenset[str]) -> list[tuple[Path, str]]:
    """(path, real path) of the files under `root` (searched recursively) whose suffix, in any
    case, is in `suffixes`, sorted by path; hidden files and folders (name starting with ".") left
    out, links to files kept, links to folders not followed, and folders that cannot be read
    passed over: what filtering `sorted(root.rglob("*"))` gives, with one listing a folder and no
    call for a plain file."""
    found: list[tuple[Path, str]] = []
    folders = [(str(root), real_path(root))]
    while folders:
        folder, real = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except (PermissionError, FileNotFoundError, NotADirectoryError):  # as rglob; or gone since
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append((entry.path, os.path.join(real, name)))
            elif os.path.splitext(name)[1].lower() not in suffixes:
                continue
            elif entry.is_symlink():
                path = Path(entry.path)
                if path.is_file():  # Path's: a link loop or a broken link is no file, no error
                    found.append((path, real_path(path)))
            elif entry.is_file():
                found.append((Path(entry.path), os.path.join(real, name)))
    return sorted(found, key=itemgetter(0))
