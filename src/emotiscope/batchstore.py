"""The dataset folder of `emotiscope batch` (layout and resuming: see batch.py): which files
are done, and their rows, one Parquet part per file. `Store` is the one writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .batch import FileResult
from .errors import ConfigError


def schema(labels: Sequence[str]):
    """The Arrow schema of every part: the same columns, photos and videos alike."""
    import pyarrow as pa

    return pa.schema([("file", pa.string()), ("face", pa.int32()), ("x", pa.int32()),
                      ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()),
                      ("label", pa.string()), ("score", pa.float64()),
                      *((name, pa.float64()) for name in labels), ("assumed", pa.bool_()),
                      ("time", pa.float64()), ("frame", pa.int64()), ("track_id", pa.int64())])


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
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out {root} is a file; give a folder")
        self._check_settings(settings, force, flags)
        self.done = self._read_done()

    def _check_settings(self, settings: dict, force: bool, flags: dict | None) -> None:
        from .outputs import write_text

        marker = self.root / "settings.json"
        if marker.exists():
            earlier = json.loads(marker.read_text(encoding="utf-8"))
            if "model_sha256" not in earlier and earlier == flags:
                # written before the model's identity was: the same flags resume it, and from
                # now on it records the model they resolve to
                earlier = settings
            if earlier != settings and not force:
                raise ConfigError(f"{self.root} holds rows made with other settings "
                                  f"({_difference(earlier, settings)}); give another --out, the "
                                  "same flags as before, or --force to start the dataset over")
            if earlier != settings:
                for part in self.parts.glob("*.parquet"):
                    part.unlink()
                self.done_list.unlink(missing_ok=True)
        elif self.root.is_dir() and any(self.root.iterdir()):
            raise ConfigError(f"--out {self.root} is a folder with other files in it; give a new "
                              "or empty folder (or an earlier batch --out to resume it)")
        self.parts.mkdir(parents=True, exist_ok=True)
        write_text(marker, json.dumps(settings, indent=1, sort_keys=True) + "\n")

    def _read_done(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        with contextlib.suppress(FileNotFoundError), open(self.done_list, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):  # a line cut short by a kill
                    record = json.loads(line)
                    done[record["path"]] = record
                    if record.get("part") is None:  # forgotten (see `forget`)
                        del done[record["path"]]
        return done

    def _append_done(self, record: dict) -> None:
        with open(self.done_list, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def is_done(self, path: Path) -> bool:
        key = file_key(path)
        record = self.done.get(key["path"])
        return (record is not None and record["size"] == key["size"]
                and record["mtime_ns"] == key["mtime_ns"] and (self.parts / record["part"]).exists())

    def add(self, path: Path, result: FileResult) -> int:
        """Write `result`'s rows as the file's part, then mark it done; returns its face count."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .outputs import atomic_path

        key = file_key(path)
        part = _part_name(key["path"])
        table = pa.Table.from_pylist(result.rows, schema=schema(result.labels))
        with atomic_path(self.parts / part) as tmp:
            pq.write_table(table, tmp)
        faces = sum(row.get("face") is not None for row in result.rows)
        record = {**key, "file": result.path, "part": part, "faces": faces}
        self._append_done(record)
        self.done[key["path"]] = record
        return faces

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


def _difference(earlier: dict, now: dict) -> str:
    changed = sorted(k for k in set(earlier) | set(now) if earlier.get(k) != now.get(k))
    return ", ".join(f"{k}: {earlier.get(k)!r} then, {now.get(k)!r} now" for k in changed[:3])


def read_rows(root: str | os.PathLike):
    """The dataset as one pyarrow Table (rows of every finished file)."""
    import pyarrow.dataset as ds

    return ds.dataset(Path(root) / "parts", format="parquet").to_table()
