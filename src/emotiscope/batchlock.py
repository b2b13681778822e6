"""One `emotiscope batch` run writes a dataset folder at a time.

`lock_out(DIR)` holds an exclusive advisory lock on DIR/.lock (flock; msvcrt.locking on
Windows) for the whole run: a second run on DIR fails at once, and the lock goes with the
process, however it ends (Ctrl-C, an error, SIGKILL, a power loss), so it is never left stale.
The file is removed when a run ends (a killed run's is harmless, and reused).
Readers of the rows (read_rows, pandas, DuckDB) take no lock. Holding it, a run removes the
temporary parts that killed runs left behind (batchparts.clear_temp_parts).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, OutputError

LOCK_NAME = ".lock"
BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}  # flock, msvcrt: held


@contextlib.contextmanager
def lock_out(root: str | os.PathLike) -> Iterator[Path]:
    """Hold DIR's lock while the block runs (DIR is made if need be); OutputError, having
    written nothing, when another process holds it."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root} is a file; give a folder")
    path, made = root / LOCK_NAME, not root.exists()
    try:
        fd = _open_locked(path)
    except OSError as exc:
        raise ConfigError(f"cannot use --out {root}: {exc.strerror or exc} "
                          f"({exc.filename or path}); give another folder") from exc
    if fd is None:
        yield root
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield root
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still locked: a run that opened it meanwhile sees it gone (below)
            if made:
                root.rmdir()  # a run that failed before writing anything leaves no folder
        os.close(fd)  # releases the lock


def _open_locked(path: Path) -> int | None:
    """An fd of `path` holding its lock; None (said on stderr) where the file system has no
    locks (some network file systems)."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # the folder was removed by a run that made it and wrote nothing
        try:
            _try_lock(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in BUSY:
                path.unlink(missing_ok=True)
                print(f"emotiscope batch: {path.parent} is on a file system without locks "
                      f"({exc.strerror}); make sure no other emotiscope batch writes it",
                      file=sys.stderr)
                return None
            raise OutputError(f"--out {path.parent} is being written by another emotiscope "
                              f"batch{_holder(path)}; wait for it to end (or stop it), or give "
                              "another --out") from None
        with contextlib.suppress(OSError):
            now, held = os.stat(path), os.fstat(fd)
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return fd
        os.close(fd)  # the run that held it removed it before we locked it: take the new one


def _try_lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _holder(path: Path) -> str:
    """" (process PID on HOST)" as the holder wrote it in the lock file, or ""."""
    try:
        pid, host = path.read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return ""
    return f" (process {pid} on {host})"
