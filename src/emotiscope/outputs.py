"""Writing results safely: every output file appears whole or not at all, and file names that are
not valid UTF-8 can still be printed.

An output is written to a hidden temporary file in the same folder (same suffix, so encoders
that pick the format from the name still work) and renamed over the target with `os.replace`,
which is atomic on POSIX and Windows: a run killed mid-write leaves the previous file (or none),
never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, DependencyError, OutputError, OutputExistsError

TEMP_STEM_BYTES = 64  # of the name in a temporary name: a name near the 255-byte limit fits
NAME_MAX = 255  # bytes in one file name on most file systems


def write_error(path: Path, exc: OSError) -> OutputError:
    """The one-line OutputError for failing to write `path` (a name too long, a full disk...)."""
    if exc.errno == errno.ENAMETOOLONG:
        size = len(os.fsencode(path.name))
        what = (f"its name is too long ({size} bytes; most file systems allow {NAME_MAX})"
                if size > NAME_MAX
                else f"its path is too long ({len(os.fsencode(path))} bytes)")
        return OutputError(f"cannot write {display(path)}: {what}; choose a shorter name")
    return OutputError(f"cannot write {display(path)}: {exc.strerror or exc}; choose another "
                      "output path or free some space")


def temp_beside(path: Path) -> Path:
    """A new hidden name in `path`'s folder with the same suffix (encoders pick the format from
    it): ".NAME.RANDOM.tmpSUFFIX", NAME the start of the name (at most TEMP_STEM_BYTES bytes),
    or "output" when the name is not valid UTF-8."""
    try:
        # a name that is not valid UTF-8 holds lone surrogates; cut on a character boundary
        stem = path.stem.encode("utf-8")[:TEMP_STEM_BYTES].decode("utf-8", "ignore")
    except UnicodeEncodeError:
        stem = "output"
    return path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is
    removed and `path` is left as it was. OSError becomes a one-line OutputError."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
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


def check_figure_path(path: str | os.PathLike, flag: str = "--out") -> Path:
    """`path` if matplotlib can write a chart in the format its suffix names, checked before any
    work: DependencyError without matplotlib, OutputError naming the formats it writes."""
    path = Path(path)
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise DependencyError(f"{flag} needs matplotlib: pip install matplotlib") from exc
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        what = (f"matplotlib cannot write .{suffix} charts" if suffix
                else "no suffix to take the chart's format from")
        raise OutputError(f"{flag} {display(path)}: {what}; end the name with one of "
                          f"{', '.join('.' + name for name in formats)}, e.g. "
                          f"{display(path.with_suffix('.png'))}")
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
        raise OutputError(f"{flag} {display(folder)}: {display(existing)} is a file, not a folder; "
                         "choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {display(folder)}: {display(existing)} is not writable "
                          "(permission denied); choose another output folder")
    return folder


def refuse_existing(paths: list[Path], force: bool) -> None:
    """OutputExistsError naming the first few of `paths` that exist, unless `force`."""
    existing = [display(p) for p in paths if os.path.exists(p)]  # False for a name too long
    if force or not existing:
        return
    if len(existing) == 1 and len(paths) == 1:
        raise OutputExistsError(f"{existing[0]} already exists; pass --force to overwrite it or "
                                "choose another output path")
    shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
    raise OutputExistsError(f"{len(existing)} output file(s) already exist ({shown}); pass --force "
                            "to overwrite them or choose another output path")


def check_new(path: str | os.PathLike, force: bool = False, flag: str = "--out", *,
              create_folder: bool = True) -> Path:
    """`path` if an output may be written there, checked before any work: not a folder, absent
    (or `force`), and writable. Its folder may be created later (`create_folder`, as
    `atomic_path` does) or must exist already (video writers). The one "output exists" check:
    OutputExistsError without --force, OutputError for the rest; messages name `flag`."""
    path = Path(path)
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise write_error(path, OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG)))
    if os.path.isdir(path):  # os.path: False, not OSError, for a name too long
        raise OutputError(f"{flag} {display(path)} is a folder; give a file name")
    refuse_existing([path], force)
    if create_folder:
        check_writable_folder(path.parent, flag)
    elif not path.parent.is_dir():
        raise OutputError(f"cannot write {display(path)}: folder {display(path.parent)} does not "
                          "exist; create it first")
    elif not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write {display(path)}: permission denied; choose another path")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {display(path)}: permission denied; choose another path")
    return path


def resolved(path: str | os.PathLike, flag: str) -> Path:
    """`path` with its links followed; a symlink loop (RuntimeError before Python 3.13, OSError
    after) becomes a one-line OutputError naming `flag`."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise OutputError(f"{flag} {display(path)}: symlink loop ({exc}); remove or fix the link, "
                          "or choose another path") from exc


def refuse_inputs(outputs: list[tuple[str, str | os.PathLike | None]],
                  inputs: list[str | os.PathLike]) -> None:
    """ConfigError, even with --force and before any work, when an output (flag, path) is one of
    the `inputs` (the same file by any name or link) or lies in a folder below an input folder
    (the class folders a data set is read from, where it would replace or join the data)."""
    for flag, out in outputs:
        if not out:
            continue
        target = resolved(out, flag)
        for source in inputs:
            src = resolved(source, "input")
            if target == src or _same_file(out, source):
                raise ConfigError(f"{flag} {display(out)} would overwrite the input "
                                  f"{display(source)}; choose another path")
            if src.is_dir() and target.parent != src and target.is_relative_to(src):
                raise ConfigError(f"{flag} {display(out)} lies inside the input folder "
                                  f"{display(source)}, where it would replace or join the data; "
                                  "choose a path outside it")


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether `a` and `b` are one file (hard links too); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False
