"""`emotiscope predict PATH...`: every face in photos, with its emotion.

Prints a table (or JSON lines / CSV) on stdout, writes annotated copies with --out, and
carries on past bad inputs: exit 0 when all went well, 1 when any input failed (a summary
of the failures goes to stderr), 2 for usage errors.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from pathlib import Path

from ..errors import ConfigError, InputError, OutputError
from ..options import add_recognizer_flags, options_from_args, positive_int
from ..outputs import display, refuse_existing, resolved
from ..types import FaceEmotion
from ._outlog import NAME as LOG_NAME
from ._outlog import OutputLog, earlier_outputs

HELP = "find faces in photos and recognise their emotions"
BAR_ALWAYS = 100  # show a progress bar from this many files on, even when stderr is no terminal
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
STDIN, STDIN_PATH = "-", Path("-")  # `-`: one image piped in (a file named - is ./- ; see below)
STDIN_LIMIT = 1 << 30


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help=HELP, description=HELP)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="image files, folders (searched recursively) or glob patterns; - reads "
                        "one image from standard input")
    p.add_argument("--sample", action="store_true",
                   help="also analyse the sample photo shipped with emotiscope")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="write annotated copies of the images into DIR")
    p.add_argument("--force", action="store_true", help="overwrite existing files in --out")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true",
                      help="print JSON lines: file, face (1 = leftmost), box {x,y,w,h}, label, "
                           "score, scores, assumed; an image with no face is one line with "
                           "face null")
    form.add_argument("--csv", action="store_true",
                      help="print CSV with a header row; an image with no face is one row with "
                           "empty face columns")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="images analysed at once, each on one thread (default: one per CPU "
                        "core when there are several images; output order is the same)")
    add_recognizer_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..images import iter_image_paths, sample_image_path

    inputs = [*args.paths, *([str(sample_image_path())] if args.sample else [])]
    if not inputs:
        raise ConfigError("give at least one image, folder or glob pattern, or --sample")
    piped = _read_stdin(args) if STDIN in inputs else None
    failures = [(display(item), problem) for item in inputs if (problem := _not_a_photo(item))]
    inputs = [item for item in inputs if item != STDIN and not _not_a_photo(item)]
    paths = [*([STDIN_PATH] if piped is not None else []), *iter_image_paths(
        inputs, on_error=lambda item, exc: failures.append((display(item), str(exc))))]
    unusable = len(failures)  # missing paths, empty folders, globs that match nothing
    outputs, log = {}, None
    if args.out is not None:
        kept = drop_earlier_outputs(paths, args.out)
        outputs = plan_outputs(kept, args.out, args.force)
        log = OutputLog(args.out)
        if len(kept) < len(paths):  # said once the run goes ahead, not before a refusal
            print(f"emotiscope predict: skipped {len(paths) - len(kept)} file(s) in --out "
                  f"{display(args.out)} that earlier runs wrote (annotated copies listed in "
                  f"{LOG_NAME})", file=sys.stderr)
        paths = kept
    if paths:
        _analyse_all(paths, outputs, args, failures, log, piped)
    _report_failures(failures, len(paths) + unusable)
    return 1 if failures else 0


def _read_stdin(args) -> bytes:
    """The image piped in for `-` (read before any work, whole, at most STDIN_LIMIT bytes)."""
    if args.paths.count(STDIN) > 1:
        raise ConfigError("- (standard input) is given more than once; it holds one image")
    if args.out is not None:
        raise ConfigError("--out names each annotated copy after its input, and an image read "
                          "from standard input (-) has no name; save it to a file and give that")
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("- reads an image from standard input, which is a terminal here; pipe "
                          "one in, e.g. emotiscope predict - < photo.jpg")
    data = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise ConfigError(f"standard input holds more than {STDIN_LIMIT >> 20} MiB, more than "
                          "one photo; save the image to a file and give its path")
    return data


def _not_a_photo(item: str) -> str | None:
    """Why `item` is no input for predict (a URL, a video), or None."""
    if URL.match(item):
        return (f"{display(item)} is a URL: predict does not download anything; download the image "
                "first (e.g. curl -O URL) and give the file")
    from ..images import VIDEO_SUFFIXES

    if Path(item).suffix.lower() in VIDEO_SUFFIXES:
        return f"{display(item)} is a video: use `emotiscope video {display(item)}` instead"
    return None


def _analyse_all(paths: list[Path], outputs: dict[Path, Path], args,
                 failures: list[tuple[str, str]], log: OutputLog | None,
                 piped: bytes | None) -> None:
    from tqdm import tqdm

    from ..bigphoto import analyze_photo
    from ..draw import annotate
    from ..images import load_image, save_image
    from ..workers import RecognizerPool, cpu_count, ordered_map

    workers = min(len(paths), args.workers or (cpu_count() if len(paths) > 1 else 1))
    pool = RecognizerPool.build(workers, options=options_from_args(args))
    recognizer = pool.first
    show_bar = len(paths) >= BAR_ALWAYS or (len(paths) > 1 and sys.stderr.isatty())
    bar = tqdm(total=len(paths), unit="image", file=sys.stderr, disable=not show_bar, leave=False)
    printer = _Printer(args, recognizer.labels, paths,
                       emit=tqdm.write if show_bar else print)

    def analyse(path: Path) -> list:
        with pool.use() as recognizer:
            if path is STDIN_PATH:  # this very object: a file named - found in a folder is not it
                return analyze_photo(recognizer, piped or b"", name="standard input")
            if path not in outputs:  # nothing to draw on: big JPEGs may be decoded small
                return analyze_photo(recognizer, path)
            image = load_image(path, max_pixels=recognizer.max_pixels)
            faces = recognizer.faces(image, photo=True)
            save_image(outputs[path], annotate(image, faces, labels=recognizer.labels),
                       overwrite=args.force)
        return faces

    done = faces_total = 0
    for path, faces, error in ordered_map(analyse, paths, workers):  # in input order
        bar.update()
        if isinstance(error, InputError | OutputError):  # stdin's messages name it
            failures.append(("standard input" if path is STDIN_PATH else display(path), str(error)))
            continue
        if error is not None:
            raise error
        assert faces is not None, "ordered_map gives a result wherever it gives no error"
        if log is not None and path in outputs:  # listed in input order, whatever the workers
            log.add(outputs[path])
        printer.add(path, faces)
        done, faces_total = done + 1, faces_total + len(faces)
    bar.close()
    if not (args.json or args.csv) and (done or len(failures) == 0):  # else the errors say it
        where = f"; annotated images in {args.out}" if args.out is not None and done else ""
        print(f"{done} image(s), {faces_total} face(s){where}", file=sys.stderr)


class _Printer:
    """Streams results as a table, JSON lines or CSV (one row per face)."""

    def __init__(self, args, labels: tuple[str, ...], paths: list[Path], emit) -> None:
        self.form = "json" if args.json else "csv" if args.csv else "table"
        self.labels, self.emit = labels, emit
        self.width = min(60, max(len(display(p)) for p in paths))
        self.header = ["file", "face", *FaceEmotion.columns(labels), "assumed"]
        if self.form == "csv":
            self._csv(self.header)
        elif self.form == "table":
            self.emit(f"{'file':<{self.width}}  face  {'label':<10} score  box (x, y, w, h)")

    def _name(self, path: Path) -> str:
        """The path, its start cut to fit the table's file column."""
        text = display(path)
        return text if len(text) <= self.width else "…" + text[len(text) - self.width + 1:]

    def add(self, path: Path, faces) -> None:
        """One row per face; an image with no face still gets one row (face null / empty)."""
        if not faces:
            self._no_face(path)
        for k, face in enumerate(faces, start=1):
            box = face.box
            if self.form == "json":
                self.emit(json.dumps({"file": display(path), "face": k, **face.as_dict(digits=4)}))
            elif self.form == "csv":
                self._csv([display(path), k, *face.as_row(self.labels), int(face.assumed)])
            else:
                note = "  (assumed: whole image taken as a face crop)" if face.assumed else ""
                self.emit(f"{self._name(path):<{self.width}}  {k:>4}  {face.label:<10} {face.score:>5.0%}"
                          f"  {box.x}, {box.y}, {box.w}, {box.h}{note}")

    def _no_face(self, path: Path) -> None:
        if self.form == "json":
            self.emit(json.dumps({"file": display(path), "face": None}))
        elif self.form == "csv":
            self._csv([display(path)] + [""] * (len(self.header) - 1))
        else:
            self.emit(f"{self._name(path):<{self.width}}     -  no face")

    def _csv(self, row: list) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(row)
        self.emit(buffer.getvalue())


def drop_earlier_outputs(paths: list[Path], out: Path) -> list[Path]:
    """Leave out the annotated copies an earlier run wrote into `out` and that are still as it
    wrote them (listed in out's record, see _outlog.py): `predict photos/ --out photos/annotated`
    does not analyse its own results again. Every other file below `out` is a photo like any
    other: analysed, and never overwritten (plan_outputs refuses)."""
    folder = resolved(out, "--out")
    below = [p for p in paths if resolved(p, "--out").is_relative_to(folder)]
    earlier = earlier_outputs(out, below)
    return [p for p in paths if p not in earlier]


def output_name(name: str) -> str:
    """The annotated copy's file name: the input's name where we can write that format, else the
    whole name + ".png" (x.gif -> x.gif.png, so it never meets x.png's copy)."""
    from ..images import WRITABLE_SUFFIXES

    return name if Path(name).suffix.lower() in WRITABLE_SUFFIXES else name + ".png"


def plan_outputs(paths: list[Path], out: Path, force: bool) -> dict[Path, Path]:
    """Input -> annotated output path: the inputs' folder layout mirrored below `out`, names from
    `output_name` (any remaining clash gets -2, -3 ... before the suffix).

    Raises, before any work, ConfigError if an output would replace an input, and
    OutputExistsError if files would be overwritten without --force.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {display(out)} is a file; give a folder")
    if not paths:
        return {}
    # The layout follows the names as given (a link keeps its own name and place); identity
    # (same file, input or not) follows links.
    given = [Path(os.path.abspath(p)) for p in paths]
    base = Path(os.path.commonpath([p.parent for p in given]))
    plan, taken = {}, {}  # taken: resolved target -> target
    for path, full in zip(paths, given, strict=True):
        target = out / full.relative_to(base).with_name(output_name(full.name))
        stem, k = target.stem, 2
        while (real := resolved(target, "--out")) in taken:
            target, k = target.with_stem(f"{stem}-{k}"), k + 1
        taken[real] = target
        plan[path] = target
    inputs = {p.resolve() for p in paths}
    onto_input = [t for real, t in taken.items() if real in inputs]
    if onto_input:
        raise ConfigError(_onto_input(out, onto_input[0], base))
    refuse_existing(list(plan.values()), force)
    return plan


def _onto_input(out: Path, target: Path, base: Path) -> str:
    """Why an --out that would replace an input is refused, and the way out."""
    where = Path(os.path.abspath(out))
    if where.is_relative_to(base) and where != base:
        # --out among the inputs, holding a file no record lists: most likely a copy written by
        # an emotiscope from before the record (.emotiscope-outputs) existed
        return (f"--out {display(out)} lies among the inputs and holds {display(target)}, which "
                f"no {LOG_NAME} there lists as an annotated copy, so it is taken for a photo and "
                "not overwritten; if it is a copy from an emotiscope before 2026-12-03 (which "
                "listed none), move or delete the old copies; otherwise choose an --out outside "
                "the inputs' folder")
    return (f"--out {display(out)} would replace the input image {display(target)} with an "
            f"annotated copy; choose a folder that holds no inputs, e.g. {display(out / 'annotated')}")


def _report_failures(failures: list[tuple[str, str]], total: int) -> None:
    if not failures:
        return
    # The messages usually start with the path already; do not repeat it.
    lines = [message if item in message else f"{item}: {message}" for item, message in failures]
    if total == 1:
        print(f"emotiscope predict: {lines[0]}", file=sys.stderr)
        return
    print(f"emotiscope predict: {len(failures)} of {total} input(s) failed:", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
