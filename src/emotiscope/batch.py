"""Archive-scale analysis: photos and videos in, one Parquet dataset of face rows out.

    DIR/parts/<key>.parquet   the rows of one finished file (written to a hidden temporary
                              part as they are made, then renamed)
    DIR/done.jsonl            one line per finished file: path, size, mtime_ns, part, faces
                              (a line with part null: the file was dropped, see Store.forget)
    DIR/settings.json         the recognizer and tracking settings the rows were made with,
                              the model as its file name and sha256
    DIR/summary.json          counts and speed of the last run
    DIR/failures.json         the files that failed in the last run, with the reason
    DIR/.lock                 while a run writes DIR: one run at a time (batchlock.py)

A row is one face: file, face (1, 2, ... in the order predict prints them), the box (x, y, w, h
in the file's pixels, top-left origin), label, score, one probability column per label,
assumed; for videos also time (seconds), frame (from 0) and track_id. A file with no face is
one row whose face (and box, label, scores) is null. Probabilities are stored unrounded;
`predict --json` and `video --csv` print the same values rounded to 4 decimals.

Resuming: a file whose path, size and modification time match its done.jsonl line is skipped.
Its part's name comes from the path alone, so a file analysed again (changed, or killed between
the part and its done line) replaces its part and rows are never duplicated; a done file that
changed and now fails loses its rows. A killed run loses only the files in flight. Damaged
done.jsonl lines are skipped, and a file whose part is missing or cut short is done again.

The engines (batchengines.py: a local process pool, or Ray Data) only turn paths into
`FileResult`s; `Store` (batchstore.py) is the one that makes a part count (renames it into
place, then writes its done line). A file's rows are made and turned into Arrow columns
CHUNK_ROWS at a time, never all held as dicts: the local engine's workers stream them into a
hidden temporary part beside the parts (the main process only renames it), Ray's actors send
them as one Arrow table (a few tens of bytes a face-frame).
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import EmotiscopeError, InputError, OutputError
from .listing import folder_files, real_path
from .options import RecognizerOptions


@dataclass(frozen=True)
class VideoSettings:
    """Tracking settings for videos (the `video` command's flags of the same names)."""

    detect_every: int = 5
    smooth: float = 0.5
    keep_for: float = 1.0

    def __post_init__(self) -> None:
        from .track import check_tracking

        check_tracking(self.smooth, self.keep_for, detect_every=self.detect_every)


@dataclass
class FileResult:
    """What an engine gives back for one file: its rows, or why it failed. The rows are either
    `part`, a finished temporary Parquet file in the dataset's parts folder (the local engine),
    or `table`, a pyarrow Table (Ray's); `faces` counts the rows with a face."""

    path: str
    table: Any = None
    part: str | None = None
    faces: int = 0
    error: str | None = None


CHUNK_ROWS = 2048  # rows held as dicts at most, before they become Arrow columns


# -- inputs ---------------------------------------------------------------------------------------

def media_suffixes() -> frozenset[str]:
    from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    return IMAGE_SUFFIXES | VIDEO_SUFFIXES


CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # no text but tab, CR, LF


def read_path_list(path: str | os.PathLike) -> list[str]:
    """The paths in a text file (- : standard input), one a line; blank lines and lines
    starting with # left out. InputError when it cannot be read, is not text (NUL or other
    control bytes) or holds no path."""
    if str(path) == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("a list of paths from standard input (-) must be piped in, and it "
                             "is a terminal here; e.g. find photos -type f | emotiscope batch "
                             "--from-file - --out DIR")
        data, path = sys.stdin.buffer.read(), "standard input"
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the list of paths {path}: {exc.strerror}; check the "
                             "path") from exc
    if CONTROL_BYTES.search(data):
        raise InputError(f"{path} is not a text file of paths (it holds binary bytes); give a "
                         "text file with one path a line")
    text = data.decode("utf-8", errors="surrogateescape")
    paths = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not paths:
        raise InputError(f"{path} holds no paths; give a text file with one path a line")
    return paths


def collect_inputs(items: Iterable[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given, folders searched recursively for photos and videos (sorted, hidden ones
    left out), globs expanded, `@list.txt` read as a list of such items (but not of other
    @lists). Each file once; the items that found nothing come back as (item, reason)."""
    suffixes = media_suffixes()
    found: list[Path] = []
    failures: list[tuple[str, str]] = []
    seen: set[str] = set()  # real paths
    for item, listed_in in _expand_lists(items, failures):
        path = Path(item)
        if path.is_file():
            matches = [(path, real_path(path))]
        elif path.is_dir():
            matches = folder_files(path, suffixes)
        elif any(c in item for c in "*?["):
            matches = [(p, real_path(p)) for p in
                       sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())]
        elif listed_in and item.startswith("@"):
            failures.append((item, f"{item} (in {listed_in}) is not a file or folder, and "
                                   "@lists within @lists are not followed; list its paths in "
                                   f"{listed_in} itself"))
            continue
        else:
            failures.append((item, f"{item} is not a file or folder; check the path"))
            continue
        if not matches:
            failures.append((item, f"{item} holds or matches no photos or videos"))
        for match, real in matches:
            if real not in seen:
                seen.add(real)
                found.append(match)
    return found, failures


def _expand_lists(items: Iterable[str], failures: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each item with the @list it came from ("" for one given directly); lists that cannot be
    used go to `failures`."""
    expanded: list[tuple[str, str]] = []
    for item in items:
        if item.startswith("@"):
            try:
                expanded.extend((line, item[1:]) for line in read_path_list(item[1:]))
            except InputError as exc:
                failures.append((item, str(exc)))
        else:
            expanded.append((item, ""))
    return expanded


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


def video_rows(recognizer, path: str, settings: VideoSettings) -> Iterator[list[dict]]:
    """video --csv's rows for one video, CHUNK_ROWS at a time as they are made (one null-face
    row when no frame has a face); InputError after the last chunk when the video is damaged."""
    from .videoanalysis import VideoAnalyzer
    from .videoread import VideoSource

    analyzer = VideoAnalyzer(recognizer, **asdict(settings))
    rows: list[dict] = []
    empty = True
    with VideoSource(path, max_pixels=recognizer.max_pixels) as source:
        for result in analyzer.run(source, source.fps):
            rows.extend({"file": path, "face": k, "time": result.time, "frame": result.index,
                         "track_id": f.track_id, **face_columns(f, recognizer.labels)}
                        for k, f in enumerate(result.faces, start=1))
            if len(rows) >= CHUNK_ROWS:
                yield rows
                rows, empty = [], False
        if rows or empty:
            yield rows or [{"file": path, "face": None}]
        if source.damage:
            raise InputError(f"{path} is damaged: {source.damage}")


def file_rows(recognizer, path: str, settings: VideoSettings) -> Iterator[list[dict]]:
    """One file's rows in chunks: a video's as video_rows makes them, a photo's in one."""
    if is_video(path):
        yield from video_rows(recognizer, path, settings)
    else:
        yield photo_rows(recognizer, path)


def analyse_file(recognizer, path: str, settings: VideoSettings,
                 temp: Path | None = None) -> FileResult:
    """One file's FileResult: its rows written as a temporary part named `temp`.RANDOM.tmp
    (see batchparts.temp_prefix), or as a Table when `temp` is None; emotiscope's own errors
    (unreadable, damaged...) become its error (and no part is left), except OutputError: the
    part cannot be written."""
    from .batchparts import rows_table, write_temp_part

    chunks = file_rows(recognizer, path, settings)
    try:
        if temp is None:
            table, faces = rows_table(chunks, recognizer.labels)
            return FileResult(path, table=table, faces=faces)
        part, faces = write_temp_part(chunks, recognizer.labels, temp)
        return FileResult(path, part=str(part), faces=faces)
    except OutputError:
        raise  # the dataset cannot be written (a full disk...): the run stops, as it did
    except EmotiscopeError as exc:
        return FileResult(path, error=str(exc))


def make_recognizer(options: RecognizerOptions, threads: int | None = 1):
    """One recognizer for one worker: one ONNX Runtime and detector thread (workers spread over
    the cores, not the threads of one)."""
    from .workers import build_recognizers

    return build_recognizers(1, **asdict(options), threads=threads)[0]


def dataset_settings(options: RecognizerOptions, video: VideoSettings, recognizer) -> dict:
    """What settings.json records: every flag, with the model and the detector as `recognizer`
    resolved them (the model file's name and sha256; "yunet" or "haar" for auto), so rows of
    another model never join a dataset, however it was chosen (--model, $EMOTISCOPE_MODEL or
    the bundled one)."""
    info = recognizer.classifier.info
    return {**flag_settings(options, video), "model": info.path.name, "model_sha256": info.sha256,
            "detector": getattr(recognizer.detector, "name", str(options.detector))}


def flag_settings(options: RecognizerOptions, video: VideoSettings) -> dict:
    """The flags as given (the model as --model said, or null), as settings.json held them
    before it recorded the model's identity."""
    return {**{k: str(v) if v is not None else None for k, v in asdict(options).items()},
            **asdict(video)}
