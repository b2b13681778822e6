"""Video frames in: files, cameras and stream URLs (videowrite.py writes them out).

Frames are RGB uint8 HxWx3 arrays everywhere in emotiscope; OpenCV's BGR stays inside this
module. Sizes are (width, height) in pixels, frame rates in frames per second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ._quiet import quiet_native_output
from .containers import cut_short
from .cvpath import OpenCvPath, is_utf8
from .errors import InputError
from .images import check_size, not_a_file
from .options import DEFAULT_MAX_PIXELS
from .outputs import display

DEFAULT_FPS = 30.0
MIN_FPS, MAX_FPS = 0.01, 1000.0  # rates outside (0 and garbage such as 90000) count as unknown
MAX_BAD_RUN = 8  # undecodable frames in a row after which a file counts as ended
# A frame's own timestamp this close to index / fps is taken as index / fps: container time
# bases round (1 ms in .mkv: up to half of it off, a hair more in floating point), and
# constant-rate files keep their exact times.
SNAP_SECONDS = 0.0005 + 1e-9


def latest_sane_time(seconds: float | None) -> float:
    """The latest believable frame time in a video stated to last `seconds` (None or <= 0:
    unknown, no limit): a timestamp past it is bogus (a damaged stamp far ahead), not a pause.
    The margin covers durations estimated from the bitrate (MPEG-TS) and frame counts."""
    if seconds is None or not seconds > 0:
        return float("inf")
    return 1.5 * seconds + 5.0


def parse_source(source: str | int | os.PathLike) -> int | str:
    """'0' or 0 -> camera index 0, unless a file of that name exists; a Path, and anything
    else, is a file path or a stream URL."""
    if isinstance(source, int):
        return source
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    text = source.strip()
    return int(text) if text.isdigit() and not os.path.isfile(source) else text


def is_url(source: int | str) -> bool:
    return isinstance(source, str) and "://" in source


def _open_capture(source: int | str) -> cv2.VideoCapture:
    """cv2.VideoCapture with OpenCV's and FFmpeg's own log lines kept off the terminal while
    opening: a failure becomes one InputError that says what to do instead."""
    # FFmpeg's per-frame complaints about damaged streams ("marker does not match f_code", one
    # line per frame) would bury ours; OpenCV reads this once, when it first loads FFmpeg.
    # Set OPENCV_FFMPEG_LOGLEVEL yourself (e.g. 16, errors) to see them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with quiet_native_output():
        return cv2.VideoCapture(source)


class VideoSource:
    """Frames from a video file, a camera index or a stream URL, as RGB uint8 HxWx3.

    Opening reads the first frame (in a file, the first that decodes), so a source that cannot
    deliver one fails here with an InputError. `fps` falls back to 30 when the source does not
    report a rate (`fps_known`). Undecodable frames in a file are skipped and counted
    (`frames_skipped`); `timed()` gives each frame with its true place in the source and
    its time (`time`: the frame's own timestamp in a file, so
    variable-frame-rate videos are timed right; index / fps for cameras and streams).
    `frame_count` is the container's estimate for files (it can be off by a few frames, so it
    only sizes the progress bar), None for cameras and streams.
    Frames above `max_pixels` (width * height) are refused when the source opens, before
    the first one is decoded where the container states the size.
    """

    def __init__(self, source: str | int | os.PathLike, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.source = parse_source(source)
        self.is_camera = isinstance(self.source, int)
        # the file's path; None for a camera or a stream URL
        self.file = None if isinstance(self.source, int) or is_url(self.source) else Path(self.source)
        if self.file is not None and (reason := not_a_file(self.file)):
            raise InputError(f"video {reason}")
        if self.file is not None and self.file.stat().st_size == 0:
            raise InputError(f"video file {self.describe()} is empty (0 bytes); check the path")
        if self.file is None and not is_utf8(str(self.source)):  # OpenCV would crash on it
            raise InputError(f"stream address {self.describe()} is not valid UTF-8; check it")
        # A file name that is not valid UTF-8 is opened through an ASCII link (see cvpath.py).
        self._name = OpenCvPath(self.file) if self.file is not None else None
        cap = _open_capture(self._name.path if self._name else self.source)
        self._cap: cv2.VideoCapture | None = cap
        if not cap.isOpened():
            self.close()
            raise InputError(self._cannot_open())
        self._check_size(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), max_pixels)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps_known = bool(np.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS)
        self.fps = float(fps) if self.fps_known else DEFAULT_FPS
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.is_file else 0
        self.frame_count: int | None = count if count > 0 else None
        # a frame's own timestamp past this is bogus (frame_count is the container's estimate)
        self._time_limit = latest_sane_time(count / self.fps if count > 0 and self.fps_known else None)
        self.frames_read = 0
        self.frames_skipped = 0  # undecodable frames passed over in a file
        self.time = -1.0  # seconds: the time of the frame `read` returned last
        self._anchor = (0, 0.0)  # (index, time) of the last frame timed by its own timestamp
        self._stamp: float | None = None  # the timestamp of the frame decoded last, seconds
        with quiet_native_output():
            self._first = self._decode()
            if self._first is None and self.is_file:  # a damaged start: skip to what decodes
                self._first = self._decode_past_damage()
        self._first_stamp = self._stamp
        if self._first is None:
            self.close()
            raise InputError(self._no_frames())
        self.size = (self._first.shape[1], self._first.shape[0])
        self._check_size(*self.size, max_pixels)

    @property
    def is_file(self) -> bool:
        """A file, not a camera or a stream."""
        return self.file is not None

    def _check_size(self, width: int, height: int, max_pixels: int) -> None:
        """InputError (source closed) for frames above the pixel limit or beyond 50:1."""
        try:
            if width > 0 and height > 0:
                check_size(width, height, f"video {self.describe()}", max_pixels)
        except InputError:
            self.close()
            raise

    def _cannot_open(self) -> str:
        if self.is_camera:
            return (f"cannot open camera {self.source}: no camera at that index or it is in use; "
                    "try --camera 1, a stream URL or a video file")
        if not self.is_file:
            return f"cannot open stream {self.source}: check the address and that it is reachable"
        return (f"cannot open video {self.describe()}: not a video, corrupt or truncated, or a codec "
                "OpenCV's FFmpeg cannot decode; re-encode it: ffmpeg -i IN -c:v libx264 out.mp4")

    def _no_frames(self) -> str:
        if self.is_camera:
            return (f"camera {self.source} opened but sent no frame; it may be in use by another "
                    "program or need a moment: try again, or --camera 1")
        return (f"{self.describe()} has no decodable frames (empty, corrupt, or an unsupported "
                "codec); re-encode it: ffmpeg -i IN -c:v libx264 out.mp4")

    def _decode(self) -> np.ndarray | None:
        if self._cap is None:  # closed
            return None
        try:
            ok, bgr = self._cap.read()
        except cv2.error:  # some corrupt streams raise instead of returning False
            return None
        if not ok or bgr is None or bgr.size == 0:
            return None
        # FFmpeg's presentation time of this frame, from the stream's start (0 when it has
        # none); a camera's or stream's is a clock reading, not used.
        self._stamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000 if self.is_file else None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _decode_past_damage(self) -> np.ndarray | None:
        """After a failed decode in a file: the next frame that decodes, counting the ones
        skipped, or None at the end (MAX_BAD_RUN failures in a row)."""
        for skipped in range(1, MAX_BAD_RUN + 1):
            if (frame := self._decode()) is not None:
                self.frames_skipped += skipped
                return frame
        return None

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end of the source (or when a camera disconnects).
        In a file, a frame that does not decode is skipped and counted (`frames_skipped`)."""
        frame: np.ndarray | None
        if self._first is not None:
            frame, self._first, self._stamp = self._first, None, self._first_stamp
        else:
            frame = self._decode()
            if frame is None and self.is_file and self._cap is not None:
                with quiet_native_output():
                    frame = self._decode_past_damage()
        if frame is not None:
            self.frames_read += 1
            self.time = self._frame_time(self._stamp)
        return frame

    def _frame_time(self, stamp: float | None) -> float:
        """The time of the frame at `index`: its own timestamp when it has a sane one (not
        negative, after the frame before, not past the file's stated end), else the nominal
        rate on from the last frame that had one (index / fps when none had)."""
        index = self.index
        if stamp is None or not (self.time < stamp <= self._time_limit and stamp >= 0):  # NaN too
            return self._anchor[1] + (index - self._anchor[0]) / self.fps
        nominal = index / self.fps
        if abs(stamp - nominal) <= SNAP_SECONDS and nominal > self.time:
            stamp = nominal
        self._anchor = (index, stamp)
        return stamp

    @property
    def index(self) -> int:
        """The place in the source of the frame `read` returned last, from 0, counting the
        undecodable frames skipped before it (-1 before the first)."""
        return self.frames_read + self.frames_skipped - 1

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def timed(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, time, frame) triples: each frame with its place in the source (`index`), so
        the frames after a skipped one keep their own numbers, and its time in seconds (`time`)."""
        while (frame := self.read()) is not None:
            yield self.index, self.time, frame

    @property
    def damage(self) -> str | None:
        """What the decoder or the file itself showed to be wrong with a file read to its
        end, or None. Never judged from `frame_count`, which is only the container's estimate
        (it can exceed the frames a sound file really has)."""
        if self.file is None:
            return None
        if self.cut_short:
            return "the file is shorter than its own header says (truncated)"
        if self.frames_skipped:
            return f"{self.frames_skipped} frame(s) could not be decoded (corrupt) and were skipped"
        return None

    @property
    def cut_short(self) -> bool:
        """True for a file shorter than its own header says (never for cameras and streams)."""
        return self.file is not None and cut_short(self.file)

    @property
    def truncated(self) -> bool:
        """True when the file turned out to be cut short or to hold undecodable frames."""
        return self.damage is not None

    def describe(self) -> str:
        if isinstance(self.source, int):
            return f"camera {self.source}"
        return display(self.source)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._name is not None:
            self._name.close()
            self._name = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
