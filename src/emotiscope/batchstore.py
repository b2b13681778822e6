"""The dataset folder of `emotiscope batch` (layout and resuming: see batch.py): which files
are done, and their rows, one Parquet part per file. `Store` is the one writer;
the command holds the folder's lock (batchlock.py) while it writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .batch import FileResult
from .batchlock import LOCK_NAME
from .batchparts import clear_temp_parts
from .errors import ConfigError, DataError


def file_key(path: str | os.PathLike) -> dict[str, Any]:
    """What marks a file as already done: its absolute path, size and modification time."""
    stat = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class Store:
    """The dataset folder: which files are done, and their rows written one part per file."""

    def __init__(self, root: str | os.PathLike, settings: dict, force: bool = False,
                 flags: dict | None = None) -> None:
        """`settings`: what the rows are made with (`dataset_settings`); `flags`: the same
        as older versions wrote them (`flag_settings`), to resume a dataset they started."""
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.done_list = self.root / "done.jsonl"
        self.damaged_lines = 0  # lines of done.jsonl skipped as damaged (their files redone)
        self._cut_at: int | None = None  # where done.jsonl's cut last line starts, if it has one
        try:
            if self.root.exists() and not self.root.is_dir():
                raise ConfigError(f"--out {root} is a file; give a folder")
            self._check_settings(settings, force, flags)
            self.done = self._read_done()
        except OSError as exc:
            raise ConfigError(f"cannot use --out {root}: {exc.strerror or exc} "
                              f"({exc.filename or root}); give another folder") from exc

    def _check_settings(self, settings: dict, force: bool, flags: dict | None) -> None:
        from .outputs import write_text

        marker = self.root / "settings.json"
        for path in (marker, self.done_list):
            if path.is_dir():
                raise ConfigError(f"{path} is a folder; move it out of {self.root}, or give "
                                  "another --out")
        if self.parts.exists() and not self.parts.is_dir():
            raise ConfigError(f"{self.parts} is not a folder; move it out of {self.root}, or "
                              "give another --out")
        if marker.exists():
            earlier = _read_settings(marker, force)
            if earlier is not None and "model_sha256" not in earlier and earlier == flags:
                # written before the model's identity was: the same flags resume it, and from
                # now on it records the model they resolve to
                earlier = settings
            if earlier != settings and not force:
                raise ConfigError(f"{self.root} holds rows made with other settings "
                                  f"({_difference(earlier or {}, settings)}); give another "
                                  "--out, the same flags as before, or --force to start the "
                                  "dataset over")
            if earlier != settings:
                for part in self.parts.glob("*.parquet"):
                    part.unlink()
                clear_temp_parts(self.parts)  # and the temporary parts a killed run left
                self.done_list.unlink(missing_ok=True)
        elif self.root.is_dir() and any(p.name != LOCK_NAME for p in self.root.iterdir()):
            raise ConfigError(f"--out {self.root} is a folder with other files in it; give a new "
                              "or empty folder (or an earlier batch --out to resume it)")
        self.parts.mkdir(parents=True, exist_ok=True)
        write_text(marker, json.dumps(settings, indent=1, sort_keys=True) + "\n")

    def _read_done(self) -> dict[str, tuple[int, int, str]]:
        """Path -> (size, mtime_ns, part) of each done file, read line by line (10M lines take
        ~10x less memory than the file's records as dicts). Damaged lines (bytes that are not a
        record) are skipped, so their files are analysed again, and counted in `damaged_lines`;
        a last line cut short by a killed run is skipped too, and cut off before the next record
        is written."""
        done: dict[str, tuple[int, int, str]] = {}
        try:
            fh = open(self.done_list, "rb")
        except FileNotFoundError:
            return done
        with fh:
            offset = 0
            for raw in fh:
                if not raw.endswith(b"\n"):  # JSON lines: \n only
                    self._cut_at = offset
                    break
                offset += len(raw)
                record = _done_record(raw.decode("utf-8", errors="replace"))
                if record is None:
                    self.damaged_lines += bool(raw.strip())
                elif record["part"] is None:  # forgotten (see `forget`)
                    done.pop(record["path"], None)
                else:
                    done[record["path"]] = (record["size"], record["mtime_ns"], record["part"])
        return done

    def _append_done(self, record: dict) -> None:
        if self._cut_at is not None:
            os.truncate(self.done_list, self._cut_at)
            self._cut_at = None
        with open(self.done_list, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def is_done(self, path: Path) -> bool:
        key = file_key(path)
        record = self.done.get(key["path"])
        return (record is not None and record[:2] == (key["size"], key["mtime_ns"])
                and _looks_whole(self.parts / record[2]))

    def add(self, path: Path, result: FileResult) -> int:
        """Make `result`'s rows the file's part (its temporary part renamed into place, or its
        table written whole), then mark it done; returns its face count. A temporary part that
        does not become the file's part is removed."""
        import pyarrow.parquet as pq

        from .outputs import atomic_path, write_error

        try:
            key = file_key(path)
            part = _part_name(key["path"])
            if result.part is None:
                with atomic_path(self.parts / part) as tmp:
                    pq.write_table(result.table, tmp)
            else:
                try:
                    os.replace(result.part, self.parts / part)
                except OSError as exc:
                    raise write_error(self.parts / part, exc) from exc
        finally:
            if result.part is not None:
                Path(result.part).unlink(missing_ok=True)  # absent once renamed
        record = {**key, "file": result.path, "part": part, "faces": result.faces}
        self._append_done(record)
        self.done[key["path"]] = (key["size"], key["mtime_ns"], part)
        return result.faces

    def forget(self, path: Path) -> None:
        """Drop a file's rows and done record (it changed and now fails): a dataset never keeps
        rows of a file as it was before."""
        resolved = str(Path(path).resolve())
        (self.parts / _part_name(resolved)).unlink(missing_ok=True)
        if self.done.pop(resolved, None) is not None:
            self._append_done({"path": resolved, "part": None})


def _part_name(resolved: str) -> str:
    """A file's part: named after its absolute path alone, so a new analysis replaces it."""
    return hashlib.sha1(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".parquet"


def _read_settings(marker: Path, force: bool) -> dict | None:
    """settings.json's settings; None when it is damaged and `force` starts the dataset over."""
    try:
        earlier = json.loads(marker.read_text(encoding="utf-8"))
        reason = None if isinstance(earlier, dict) else "not a JSON object"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except ValueError as exc:
        reason = f"not JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    if reason is None:
        return earlier
    if force:
        return None
    raise ConfigError(f"{marker} is damaged ({reason}); pass --force to start the dataset over")


def _done_record(line: str) -> dict | None:
    """A line of done.jsonl as its record, or None when it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        return None
    if "part" in record and record["part"] is None:
        return record
    ints = all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool)
               for k in ("size", "mtime_ns"))
    return record if ints and isinstance(record.get("part"), str) else None


def _looks_whole(part: Path) -> bool:
    """A cheap check that a part is a whole Parquet file: it ends in the format's magic bytes
    (a part cut short, emptied or overwritten does not); reading it all is left to read_rows."""
    try:
        with open(part, "rb") as fh:
            if fh.seek(0, os.SEEK_END) < 12:
                return False
            fh.seek(-4, os.SEEK_END)
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _difference(earlier: dict, now: dict) -> str:
    changed = sorted(k for k in set(earlier) | set(now) if earlier.get(k) != now.get(k))
    return ", ".join(f"{k}: {earlier.get(k)!r} then, {now.get(k)!r} now" for k in changed[:3])


def read_rows(root: str | os.PathLike):
    """The dataset as one pyarrow Table (rows of every finished file). DataError, naming the
    part, when a part is not a readable Parquet file."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    parts = Path(root) / "parts"
    try:
        return ds.dataset(parts, format="parquet").to_table()
    except (pa.ArrowException, OSError) as exc:
        for part in sorted(parts.glob("*.parquet")):
            try:
                pq.read_metadata(part)
            except (pa.ArrowException, OSError) as bad:
                raise DataError(f"{part} is not a readable Parquet part ({_first_line(bad)}); "
                                "delete it and run emotiscope batch again to redo its file") from exc
        raise DataError(f"cannot read the dataset {root}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
