"""Archive-scale analysis: photos and videos in, one Parquet dataset of face rows out.

    DIR/parts/<key>.parquet   the rows of one finished file (written whole: temp file + rename)
    DIR/done.jsonl            one line per finished file: path, size, mtime_ns, part, faces
    DIR/settings.json         the recognizer and tracking settings the rows were made with
    DIR/summary.json          counts and speed of the last run
    DIR/failures.json         the files that failed in the last run, with the reason

A row is one face: file, face (1, 2, ... in the order predict prints them), the box (x, y, w, h
in the file's pixels, top-left origin), label, score, one probability column per label,
assumed; for videos also time (seconds), frame (from 0) and track_id. A file with no face is
one row whose face (and box, label, scores) is null. Probabilities are stored unrounded;
`predict --json` and `video --csv` print the same values rounded to 4 decimals.

Resuming: a file whose path, size and modification time match its done.jsonl line is skipped.
Its part's name comes from the path alone, so a file analysed again (changed, or killed between
the part and its done line) replaces its part and rows are never duplicated. A killed run loses
only the files in flight.

The engines (the local process pool here, Ray Data in batchray.py) only turn paths into
`FileResult`s; `Store` is the one writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, EmotiscopeError, InputError
from .options import RecognizerOptions


@dataclass(frozen=True)
class VideoSettings:
    """Tracking settings for videos (the `video` command's flags of the same names)."""

    detect_every: int = 5
    smooth: float = 0.5
    keep_for: float = 1.0


@dataclass
class FileResult:
    """What an engine gives back for one file: its rows, or why it failed."""

    path: str
    rows: list[dict] = field(default_factory=list)
    labels: tuple[str, ...] = ()
    error: str | None = None


# -- inputs ---------------------------------------------------------------------------------------

def media_suffixes() -> frozenset[str]:
    from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    return IMAGE_SUFFIXES | VIDEO_SUFFIXES


def read_path_list(path: str | os.PathLike) -> list[str]:
    """The paths in a text file, one a line; blank lines and lines starting with # left out."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"cannot read the list of paths {path}: {exc.strerror}; check the path") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def collect_inputs(items: Iterable[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given, folders searched recursively for photos and videos (sorted, hidden ones
    left out), globs expanded, `@list.txt` read as a list of such items. Each file once; the
    items that found nothing come back as (item, reason)."""
    import glob

    suffixes = media_suffixes()
    found: list[Path] = []
    failures: list[tuple[str, str]] = []
    seen: set[Path] = set()
    expanded: list[str] = []
    for item in items:
        if item.startswith("@"):
            try:
                expanded.extend(read_path_list(item[1:]))
            except InputError as exc:
                failures.append((item, str(exc)))
        else:
            expanded.append(item)
    for item in expanded:
        path = Path(item)
        if path.is_file():
            matches = [path]
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes
                             and p.is_file() and not any(part.startswith(".") for part in
                                                         p.relative_to(path).parts))
        elif any(c in item for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            failures.append((item, f"{item} is not a file or folder; check the path"))
            continue
        if not matches:
            failures.append((item, f"{item} holds or matches no photos or videos"))
        for match in matches:
            if match.resolve() not in seen:
                seen.add(match.resolve())
                found.append(match)
    return found, failures


# -- one file -> rows -----------------------------------------------------------------------------

def is_video(path: str | os.PathLike) -> bool:
    from .images import VIDEO_SUFFIXES

    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def face_columns(face, labels: Sequence[str]) -> dict[str, Any]:
    """A face's cells: the box, label, score, each label's probability, assumed."""
    b = face.box
    return {"x": b.x, "y": b.y, "w": b.w, "h": b.h, "label": face.label, "score": face.score,
            **{name: face.scores[name] for name in labels}, "assumed": face.assumed}


def photo_rows(recognizer, path: str) -> list[dict]:
    """predict's rows for one photo (one null-face row when it has no face)."""
    from .bigphoto import analyze_photo

    faces = analyze_photo(recognizer, path)
    if not faces:
        return [{"file": path, "face": None}]
    return [{"file": path, "face": k, **face_columns(f, recognizer.labels)}
            for k, f in enumerate(faces, start=1)]


def video_rows(recognizer, path: str, settings: VideoSettings) -> list[dict]:
    """video --csv's rows for one video (one null-face row when no frame has a face)."""
    from .videoanalysis import VideoAnalyzer
    from .videoread import VideoSource

    analyzer = VideoAnalyzer(recognizer, **asdict(settings))
    rows: list[dict] = []
    with VideoSource(path, max_pixels=recognizer.max_pixels) as source:
        for result in analyzer.run(source, source.fps):
            rows.extend({"file": path, "face": k, "time": result.time, "frame": result.index,
                         "track_id": f.track_id, **face_columns(f, recognizer.labels)}
                        for k, f in enumerate(result.faces, start=1))
        if source.damage:
            raise InputError(f"{path} is damaged: {source.damage}")
    return rows or [{"file": path, "face": None}]


def analyse_file(recognizer, path: str, settings: VideoSettings) -> FileResult:
    """One file's FileResult; emotiscope's own errors (unreadable, damaged...) become its error."""
    try:
        rows = video_rows(recognizer, path, settings) if is_video(path) \
            else photo_rows(recognizer, path)
    except EmotiscopeError as exc:
        return FileResult(path, error=str(exc))
    return FileResult(path, rows, tuple(recognizer.labels))


def make_recognizer(options: RecognizerOptions, threads: int | None = 1):
    """One recognizer for one worker: one ONNX Runtime and detector thread (workers spread over
    the cores, not the threads of one)."""
    from .workers import build_recognizers

    return build_recognizers(1, **asdict(options), threads=threads)[0]


# -- the dataset ------------------------------------------------------------------------------------

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

    def __init__(self, root: str | os.PathLike, settings: dict, force: bool = False) -> None:
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.done_list = self.root / "done.jsonl"
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out {root} is a file; give a folder")
        self._check_settings(settings, force)
        self.done = self._read_done()

    def _check_settings(self, settings: dict, force: bool) -> None:
        from .outputs import write_text

        marker = self.root / "settings.json"
        if marker.exists():
            earlier = json.loads(marker.read_text(encoding="utf-8"))
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
        return done

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
        part = hashlib.sha1(key["path"].encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".parquet"
        table = pa.Table.from_pylist(result.rows, schema=schema(result.labels))
        with atomic_path(self.parts / part) as tmp:
            pq.write_table(table, tmp)
        faces = sum(row.get("face") is not None for row in result.rows)
        record = {**key, "file": result.path, "part": part, "faces": faces}
        with open(self.done_list, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.done[key["path"]] = record
        return faces


def _difference(earlier: dict, now: dict) -> str:
    changed = sorted(k for k in set(earlier) | set(now) if earlier.get(k) != now.get(k))
    return ", ".join(f"{k}: {earlier.get(k)!r} then, {now.get(k)!r} now" for k in changed[:3])


def read_rows(root: str | os.PathLike):
    """The dataset as one pyarrow Table (rows of every finished file)."""
    import pyarrow.dataset as ds

    return ds.dataset(Path(root) / "parts", format="parquet").to_table()
