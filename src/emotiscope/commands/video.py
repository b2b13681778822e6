"""`emotiscope video IN`: tracked faces and smoothed emotions through a video file.

Writes an annotated copy (-o; H.264 with the input's sound when PyAV is installed), per-frame
face rows (--csv, or JSON lines on stdout with --json) and a timeline plot (--plot), then
prints a per-person summary (tracks seen for under --min-seconds only counted) and the
processing speed. On any error the
outputs are closed properly, so what was processed so far stays readable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from ..errors import ConfigError, InputError, OutputError
from ..options import add_recognizer_flags, finite_float, options_from_args

HELP = "track faces through a video file: annotated copy, timeline CSV, plot, summary"


def register(subparsers) -> None:
    p = subparsers.add_parser("video", help=HELP, description=HELP)
    p.add_argument("input", metavar="IN", help="video file (anything OpenCV's FFmpeg decodes)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="annotated copy: .mp4 (H.264 with the input's sound; needs PyAV, else "
                        "mp4v without sound) or .avi (MJPG)")
    p.add_argument("--csv", metavar="PATH", help="one row per face per frame")
    p.add_argument("--json", action="store_true",
                   help="print the rows as JSON lines on stdout, then a summary line")
    p.add_argument("--plot", metavar="PNG", help="emotion mix over time per person (matplotlib)")
    p.add_argument("--min-seconds", type=finite_float, default=1.0, metavar="SECONDS",
                   help="leave people seen for less than this out of the summary and the plot; "
                        "the CSV/JSON rows keep them (default: 1.0; 0 = list everyone)")
    add_tracking_options(p, detect_every=5)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


# A video frame is never taken for a face crop: the analyzer asks only for detected faces.
VIDEO_OPTIONS = ("model", "detector", "min_face", "threshold", "max_side", "flip_tta",
                 "max_pixels")


def add_tracking_options(p: argparse.ArgumentParser, detect_every: int) -> None:
    """Recognizer and tracking flags shared with `emotiscope webcam`."""
    add_recognizer_flags(p, only=VIDEO_OPTIONS)
    add_tracking_flags(p, detect_every)


def add_tracking_flags(p: argparse.ArgumentParser, detect_every: int) -> None:
    """--detect-every, --smooth, --keep-for (also on `emotiscope batch`, for its videos)."""
    p.add_argument("--detect-every", type=int, default=detect_every, metavar="N",
                   help=f"run the face detector every N frames, track in between "
                        f"(default: {detect_every}; 1 = every frame)")
    p.add_argument("--smooth", type=finite_float, default=0.5, metavar="SECONDS",
                   help="time constant of the probability smoothing (default: 0.5; 0 = off)")
    p.add_argument("--keep-for", type=finite_float, default=1.0, metavar="SECONDS",
                   help="how long a hidden face keeps its id (default: 1.0)")


def check_tracking_options(args) -> None:
    if args.detect_every < 1:
        raise ConfigError(f"--detect-every must be 1 or more, got {args.detect_every}")
    if args.smooth < 0 or args.keep_for < 0:
        raise ConfigError(f"--smooth and --keep-for must be >= 0 seconds, got {args.smooth} "
                          f"and {args.keep_for}")


def make_analyzer(args):
    """VideoAnalyzer (with its EmotionRecognizer) from the shared flags."""
    from ..videoanalysis import VideoAnalyzer

    return VideoAnalyzer(options_from_args(args), detect_every=args.detect_every,
                         smooth=args.smooth, keep_for=args.keep_for)


def _check_outputs(args) -> None:
    from ..outputs import check_figure_path, check_new, refuse_inputs, resolved
    from ..videowrite import check_video_suffix

    flags = [("-o", args.output), ("--csv", args.csv), ("--plot", args.plot)]
    if "-" in (args.output, args.csv, args.plot):
        raise ConfigError("video writes files, not standard output (-): give a file name, "
                          "or use --json for the rows on stdout")
    refuse_inputs(flags, [args.input])
    given = [resolved(p, flag) for flag, p in flags if p]
    if len(set(given)) < len(given):
        raise ConfigError("-o, --csv and --plot must be different files")
    if args.output:
        check_video_suffix(args.output, "-o")
    if args.plot:
        check_figure_path(args.plot, "--plot")
    for flag, path in flags:
        if path:
            check_new(path, args.force, flag, create_folder=False)


def photo_format(path: str) -> str | None:
    """The still-image format of `path` from its first bytes (or its suffix), else None."""
    from ..imageheader import image_format, other_format
    from ..images import STILL_SUFFIXES  # OpenCV would open these as one-frame "videos"

    with open(path, "rb") as f:
        head = f.read(64)
    kind = image_format(head) or other_format(head)
    if kind and kind != "GIF":
        return kind
    suffix = Path(path).suffix.lower()
    return f"{suffix[1:].upper()} by its name" if not kind and suffix in STILL_SUFFIXES else None


def refuse_photo(path: str, wanted: str) -> None:
    """ConfigError when the file at `path` is a still photo, not the `wanted` kind of source."""
    if kind := photo_format(path):
        raise ConfigError(f"{path} is a photo ({kind}), not {wanted}; for photos use: "
                          f"emotiscope predict {path}")


def run(args) -> int:
    from ..images import not_a_file
    from ..timeline import Timeline
    from ..videoread import VideoSource

    check_tracking_options(args)
    if args.min_seconds < 0:
        raise ConfigError(f"--min-seconds must be >= 0 seconds, got {args.min_seconds}")
    if reason := not_a_file(Path(args.input)):
        raise InputError(f"video {reason}")
    refuse_photo(args.input, "a video")
    _check_outputs(args)
    with VideoSource(args.input, max_pixels=args.max_pixels) as source:
        analyzer = make_analyzer(args)
        if not source.fps_known:
            print(f"warning: {args.input} does not state its frame rate; frames without "
                  f"their own timestamp are timed at {source.fps:g} fps", file=sys.stderr)
        timeline = Timeline(analyzer.labels, source.fps)
        start = time.perf_counter()
        _process(source, analyzer, timeline, args)
        elapsed = time.perf_counter() - start
        frames, skipped, damage = source.frames_read, source.frames_skipped, source.damage
    _report(timeline, args, elapsed)
    if damage:
        held = ("; the video repeats the frame before each skipped one, keeping the input's "
                "length and sound") if args.output and skipped else ""
        raise InputError(f"{args.input} is damaged: {damage}; the outputs cover the {frames} "
                         f"frames that could be read, at their own times{held}")
    return 0


def _process(source, analyzer, timeline, args) -> None:
    """Decode -> analyse -> write rows and the annotated video; outputs closed on any error."""
    from tqdm import tqdm

    from ..draw import annotate
    from ..timeline import RowWriter
    from ..videoanalysis import BackgroundWriter
    from ..videowrite import open_writer

    labels = analyzer.labels
    with contextlib.ExitStack() as stack:
        video = None
        if args.output:
            writer = open_writer(args.output, source.fps, source.size, audio_from=args.input)
            _say_format(writer, args.output)
            video = BackgroundWriter(writer,
                                     lambda r: annotate(r.image, r.faces, labels=labels,
                                                        min_side=0))
            stack.callback(video.close)
        rows = []
        if args.csv:
            stream = _open_text(args.csv)
            stack.callback(_guarded, stream.close, args.csv)
            rows.append((RowWriter(stream, labels, "csv"), args.csv))
        if args.json:
            rows.append((RowWriter(sys.stdout, labels, "json"), "stdout"))
        bar = stack.enter_context(tqdm(total=source.frame_count, unit="frame", disable=None,
                                       desc=Path(args.input).name, dynamic_ncols=True))
        for result in analyzer.run(source, source.fps):
            timeline.add(result.time, result.faces, result.index)
            for writer, name in rows:
                _guarded(writer.add, name, result.time, result.index, result.faces)
            if video is not None:
                video.submit(result)
            bar.update()
        bar.total = bar.n  # the container's count was an estimate
        bar.refresh()
        if video is not None and not source.cut_short:  # a cut file's stated end is not its own
            video.source_ended()
        for writer, name in rows:
            _guarded(writer.flush, name)


def _say_format(writer, path: str) -> None:
    """One stderr line when an .mp4 falls back to OpenCV's mp4v: unplayable in browsers."""
    from ..videowrite import VideoWriter

    if isinstance(writer, VideoWriter) and path.lower().endswith(".mp4"):
        print(f"note: {path} is MPEG-4 Part 2 without sound (browsers do not play it); for H.264 "
              'with the sound: pip install av  (or pip install ".[video]")', file=sys.stderr)


def _open_text(path: str):
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}; choose another path") from exc


def _guarded(func, name: str, *args) -> None:
    """Turn a failed write (disk full, pipe closed) into a one-line error."""
    try:
        func(*args)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror or exc}; free space or choose "
                              "another path (rows written so far are kept)") from exc


def _report(timeline, args, elapsed: float) -> None:
    from ..timeline import format_summary, plot_timeline

    people = timeline.summary(args.min_seconds)
    hidden = len(timeline.series) - len(people)
    duration = timeline.seconds  # skipped undecodable frames included: the video's own length
    speed = timeline.frames / elapsed if elapsed > 0 else 0.0
    if args.plot:
        plot_timeline(timeline, args.plot, min_seconds=args.min_seconds)
    if args.json:
        print(json.dumps({"summary": [p.as_dict() for p in people], "frames": timeline.length,
                          "seconds": round(duration, 3), "fps": timeline.fps,
                          "hidden_tracks": hidden, "min_seconds": args.min_seconds,
                          "processing_fps": round(speed, 1)}))
    else:
        print(format_summary(people, duration, hidden, args.min_seconds))
    print(f"processed {timeline.frames} frames in {elapsed:.1f} s ({speed:.1f} fps)",
          file=sys.stderr)
    done = [f"{name} {path}" for name, path in
            (("video", args.output), ("rows", args.csv), ("plot", args.plot)) if path]
    if done:
        print(f"wrote {', '.join(done)} ({timeline.length} frames)", file=sys.stderr)
