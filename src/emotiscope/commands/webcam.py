"""`emotiscope webcam`: live faces and emotions from a camera, a stream URL or a video file.

A reader thread keeps only the newest frame, so when analysis is slower than the camera,
frames are skipped instead of piling up. The window shows each face boxed with its label and
confidence, a banner with the main (largest) face's sentiment and confidence, and the fps.
Keys: q or Esc quits, s saves a snapshot. --record writes the annotated stream so that it
plays in real time: H.264 shows each frame from its capture time, a fixed-rate writer repeats
the last annotated frame over skipped ones.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DependencyError, InputError
from ..types import FaceEmotion
from .video import (
    add_tracking_options,
    check_tracking_options,
    make_analyzer,
    refuse_photo,
)

if TYPE_CHECKING:  # numpy and cv2 load when the command runs, not when the CLI starts
    import numpy as np

HELP = "live emotions from a camera (or stream URL / video file) in a window"
STALL_SECONDS = 10.0  # a source silent this long counts as disconnected
WINDOW = "emotiscope (q/Esc quit, s snapshot)"
NO_GUI = ("this OpenCV has no window support (the opencv-python-headless wheel): install the "
          "GUI build of the same version beside it, pip install \"opencv-python==$(pip show "
          "opencv-python-headless | sed -n 's/^Version: //p')\" (see the README); or run "
          "with --no-window --record out.mp4, or use `emotiscope serve` and its browser page")


def register(subparsers) -> None:
    p = subparsers.add_parser("webcam", help=HELP, description=HELP)
    p.add_argument("--camera", default="0", metavar="SOURCE",
                   help="camera index, stream URL or video file (default: 0)")
    p.add_argument("--record", metavar="OUT", help="save the annotated stream: .mp4 or .avi")
    p.add_argument("--no-window", action="store_true",
                   help="run without a window (headless machines, recording, tests)")
    p.add_argument("--snapshots", default=".", metavar="DIR",
                   help="folder for snapshots saved with the s key (default: .)")
    add_tracking_options(p, detect_every=3)
    p.add_argument("--force", action="store_true", help="overwrite --record if it exists")
    p.set_defaults(func=run)


def gui_problem() -> str | None:
    """Why an OpenCV window cannot open here, with the fix; None if it can."""
    import cv2

    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if found and found.group(1).upper() == "NONE":
        return NO_GUI
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display to open a window on ($DISPLAY is not set); run with --no-window "
                "--record out.mp4, or use `emotiscope serve` and its browser page")
    return None


def main_face(faces: list[FaceEmotion]) -> FaceEmotion | None:
    """The largest face: the one the banner speaks about."""
    return max(faces, key=lambda f: f.box.area) if faces else None


def draw_banner(image: np.ndarray, faces: list[FaceEmotion], fps: float) -> np.ndarray:
    """Darken a strip across the top of an RGB image (in place) and write the main face's
    sentiment and confidence on the left and the fps on the right."""
    import cv2
    import numpy as np

    face = main_face(faces)
    text = (f"Sentiment: {face.label}   Confidence: {face.score:.0%}" if face
            else "Sentiment: no face")
    rate = f"{fps:.1f} fps"
    font, height, width = cv2.FONT_HERSHEY_SIMPLEX, image.shape[0], image.shape[1]
    scale = max(0.45, width / 1100)
    thick = max(1, round(scale * 1.6))
    wide = cv2.getTextSize(f"{text}    {rate}", font, scale, thick)[0][0] + 16
    if wide > width:  # small frames: shrink the text rather than overlap the two parts
        scale *= width / wide
    (_, th), base = cv2.getTextSize(text, font, scale, thick)
    strip = min(height, th + base + 12)
    image[:strip] = (image[:strip] * 0.35).astype(np.uint8)
    y = 6 + th
    cv2.putText(image, text, (8, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    rate_width = cv2.getTextSize(rate, font, scale, thick)[0][0]
    cv2.putText(image, rate, (max(8, width - rate_width - 8), y), font, scale, (255, 255, 0),
                thick, cv2.LINE_AA)
    return image


class FpsMeter:
    """Frames per second over the last ~second (exponential average of frame intervals)."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._interval = 0.0

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None:
            dt = now - self._last
            self._interval = dt if self._interval == 0 else 0.9 * self._interval + 0.1 * dt
        self._last = now
        return 1.0 / self._interval if self._interval > 0 else 0.0


def run(args) -> int:
    from ..outputs import check_new, refuse_inputs
    from ..videoanalysis import BackgroundWriter
    from ..videolive import LatestFrameReader
    from ..videoread import VideoSource
    from ..videowrite import check_video_suffix, open_writer

    check_tracking_options(args)
    if os.path.isfile(args.camera):
        refuse_photo(args.camera, "a camera or video")
        refuse_inputs([("--record", args.record)], [args.camera])
    show = not args.no_window
    if show and (problem := gui_problem()):
        raise DependencyError(problem)
    if args.record:
        check_video_suffix(args.record, "--record")
        check_new(args.record, args.force, "--record", create_folder=False)
    analyzer = make_analyzer(args)
    with VideoSource(args.camera, max_pixels=args.max_pixels) as source:
        writer = None
        if args.record:  # encoded in a thread, off the display loop; shown views as they are
            writer = BackgroundWriter(open_writer(args.record, source.fps, source.size),
                                      lambda shown: shown.image)
        reader = LatestFrameReader(source)
        try:
            stats = _loop(reader, analyzer, writer, show, Path(args.snapshots))
        finally:
            reader.close()
            if writer is not None:
                writer.close()
            if show:
                import cv2

                cv2.destroyAllWindows()
        # A file played to its end is judged as `video` judges it: cut short or undecodable.
        damage = source.damage if reader.ended and not stats["quit"] else None
    stalled = not (reader.ended or stats["quit"])
    _report(stats, source, args, (reader.disconnected or stalled) and not stats["quit"])
    if damage:
        kept = f"; the recording {args.record} has what could be read" if args.record else ""
        raise InputError(f"{source.describe()} is damaged: {damage}{kept}")
    return 0


def _loop(reader, analyzer, writer, show: bool, snapshots: Path) -> dict:
    """Show/record frames until the source ends or the user quits; returns counts.

    writer: a BackgroundWriter. Each shown view is recorded at its time from the first one
    (H.264 shows it then, so the recording plays in real time even when the camera misreports
    its rate) and with its capture index (a fixed-rate writer holds the view before it over
    the frames skipped in between)."""
    from ..videoanalysis import FrameResult

    meter = FpsMeter()
    stats = {"shown": 0, "captured": 0, "quit": False, "fps": 0.0}
    began = 0.0 if reader.source.is_file else None  # cameras: the first frame's capture time
    while (item := reader.latest(timeout=STALL_SECONDS)) is not None:
        frame, index, now = item  # now: a file's frame time, a camera's capture time
        faces, _ = analyzer.process(frame, now)
        stats["fps"] = meter.tick()
        view = draw_banner(_annotate(frame, faces, analyzer.labels), faces, stats["fps"])
        if writer is not None:
            began = now if began is None else began
            writer.submit(FrameResult(index, now - began, view, faces))
        stats["shown"], stats["captured"] = stats["shown"] + 1, index + 1
        if show and _window(view, snapshots):
            stats["quit"] = True
            break
    return stats


def _annotate(frame: np.ndarray, faces, labels) -> np.ndarray:
    from ..draw import annotate

    return annotate(frame, faces, labels=labels, min_side=0)


def _window(view: np.ndarray, snapshots: Path) -> bool:
    """Show one frame; handle keys. True when the user asked to quit."""
    import cv2

    cv2.imshow(WINDOW, cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
    key = cv2.waitKey(1) & 0xFF
    if key == ord("s"):
        from ..images import save_image

        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
        path = snapshots / f"emotiscope-{stamp}.png"
        print(f"snapshot: {save_image(path, view, overwrite=True)}", file=sys.stderr)
    closed = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    return key in (ord("q"), 27) or closed


def _report(stats: dict, source, args, disconnected: bool) -> None:
    skipped = stats["captured"] - stats["shown"]
    print(f"{stats['shown']} frames analysed of {stats['captured']} from {source.describe()} "
          f"({skipped} skipped to keep up), last {stats['fps']:.1f} fps", file=sys.stderr)
    if args.record:
        print(f"recording saved to {args.record}", file=sys.stderr)
    if disconnected:
        kept = f"; the recording {args.record} is complete up to there" if args.record else ""
        raise InputError(f"{source.describe()} stopped sending frames after {stats['captured']} "
                         f"frames (disconnected?){kept}")
