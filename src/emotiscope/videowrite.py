"""Annotated videos people can play: H.264 MP4 with the input's sound, written with PyAV.

OpenCV's wheels can only write MPEG-4 Part 2 ("mp4v"), which no browser plays, and never
sound. PyAV (`pip install ".[video]"`) bundles FFmpeg with libx264, so `.mp4` outputs become
H.264 (yuv420p, the profile every browser and phone plays) with the moov index at the front
(+faststart, so playback starts before the download ends), and the input's audio track is
copied (re-encoded to AAC only when MP4 cannot hold its codec). Without PyAV, or for `.avi`,
`open_writer` falls back to `VideoWriter` (OpenCV: mp4v / MJPG, no sound, a fixed rate).
H264Writer shows each frame at the time it is given (its time in the source), so
variable-frame-rate inputs keep their timing; videoaudio.py copies the sound.

Frames are RGB uint8 HxWx3; sizes are (width, height) in pixels.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .cvpath import OpenCvPath
from .errors import EmotiscopeError, OutputError
from .outputs import display, temp_beside
from .videoaudio import audio_track
from .videoread import latest_sane_time

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # codecs every opencv-python wheel can write


@functools.cache
def h264_available() -> bool:
    """True when PyAV is installed and its FFmpeg has an H.264 encoder (libx264)."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # noqa: BLE001 - missing module, missing encoder: same answer
        return False
    return True


def check_video_suffix(path: str | os.PathLike, flag: str) -> None:
    """Refuse an output suffix no writer takes, before any work: OutputError naming `flag`."""
    if Path(path).suffix.lower() not in FOURCC:
        raise OutputError(f"{flag} {display(Path(path))}: unsupported extension; "
                          "use .mp4 or .avi")


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int],
                audio_from: str | os.PathLike | None = None):
    """An H264Writer for .mp4 when PyAV can encode H.264, else VideoWriter (OpenCV).
    Both take `write(rgb)` and `close()`; `audio_from` is a file whose sound to copy."""
    if Path(path).suffix.lower() == ".mp4" and h264_available():
        return H264Writer(path, fps, size, audio_from)
    return VideoWriter(path, fps, size)


def _open_source(av, source: str | os.PathLike):
    """`source` opened with PyAV for reading, or None when it cannot be."""
    try:
        return av.open(os.fspath(source))
    except (av.FFmpegError, OSError, ValueError):
        return None


def _source_times(av, source) -> tuple[float, float | None]:
    """(the latest sane frame time for a video made from the opened `source`: `latest_sane_time`
    of its container's duration, or infinity when it states none; the end of its first video
    stream in seconds from that stream's start, or None when the stream states no duration)."""
    limit = math.inf
    if source.duration is not None and source.duration > 0:
        limit = latest_sane_time(source.duration / av.time_base)
    video = source.streams.video
    if not video or video[0].duration is None or video[0].duration <= 0:
        return limit, None
    return limit, float(video[0].duration * video[0].time_base)


class H264Writer:
    """Writes RGB frames to an H.264 MP4 (libx264, yuv420p, +faststart) and copies the audio
    of `audio_from` up to the end of the video. Odd sizes lose their last row / column
    (yuv420p needs even ones). Always close it: closing writes the index.

    `write(frame, time)` shows the frame at `time` seconds (its time in the source, so a
    variable-frame-rate input keeps its timing and stays in step with its sound); without a
    time, or with one that is not after the frame before (or NaN), a frame comes 1/fps after
    the one before, which is all a constant-rate video needs. The first frame is always shown
    from 0. Times run on a 1/90000 s (or finer) clock that a whole frame at `fps` fits, so a
    constant-rate input keeps its exact frame times. A time past the end of `audio_from`
    (its container's duration, with a margin) is a bogus timestamp and counts as missing."""

    takes_times = True  # write() takes each frame's time (BackgroundWriter passes it)

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int],
                 audio_from: str | os.PathLike | None = None, crf: int = 20) -> None:
        import av

        self.path, self.fps, self.frames_written = Path(path), float(fps), 0
        self.size = (max(2, int(size[0]) // 2 * 2), max(2, int(size[1]) // 2 * 2))
        try:
            self._out: av.container.OutputContainer | None = av.open(
                str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write video {self.path}: {exc}; check the folder is "
                             "writable") from exc
        rate = Fraction(self.fps).limit_denominator(1001)
        ticks = -(-90000 // rate.numerator)  # a clock of at least 90 kHz, 1/rate a whole step
        self._video = self._out.add_stream("libx264", rate=rate,
                                           options={"crf": str(crf), "preset": "veryfast"})
        self._video.codec_context.time_base = Fraction(1, rate.numerator * ticks)
        self._step = rate.denominator * ticks  # one frame at `fps`, in time_base units
        self._video.width, self._video.height = self.size
        self._video.pix_fmt = "yuv420p"
        self._pts = -self._step  # the last frame's pts
        self._first_dts: int | None = None  # the first video packet's dts
        source = _open_source(av, audio_from) if audio_from else None  # opened once, for both:
        self._limit, self._source_end = (math.inf, None) if source is None else _source_times(
            av, source)
        self._audio = None if source is None else audio_track(av, self._out, source)  # closes it
        self.has_audio = self._audio is not None
        self._av = av

    def _next_pts(self, time: float | None) -> int:
        """The pts of the next frame: `time` on the clock, or 1/fps after the last frame when
        it has none that is usable (NaN, not after the last frame, past the source's end)."""
        if self.frames_written == 0:
            return 0  # the output starts where the source's first frame does
        if time is not None and math.isfinite(time) and time <= self._limit:
            pts = round(time * self._video.codec_context.time_base.denominator)
            if pts > self._pts:
                return pts
        return self._pts + self._step

    def _seconds(self, pts: int) -> float:
        return float(pts * self._video.codec_context.time_base)

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Append one RGB uint8 frame, shown at `time` seconds (None: 1/fps after the frame
        before); frames of another size are resized to fit."""
        if self._out is None:
            raise EmotiscopeError(f"video {self.path} is already closed")
        if (frame.shape[1], frame.shape[0]) != self.size:
            if frame.shape[1] // 2 * 2 == self.size[0] and frame.shape[0] // 2 * 2 == self.size[1]:
                frame = frame[:self.size[1], :self.size[0]]
            else:
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        image = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        image.pts = self._pts = self._next_pts(time)
        self._mux(self._out, self._video.encode(image))
        self.frames_written += 1
        if self._audio is not None:
            self._audio.until(self._out, self._seconds(self._pts + self._step))

    def _mux(self, out, packets: list, end: int | None = None) -> None:
        """Mux video packets; with `end` (the video's end, in pts: given with the encoder's
        last packets, which hold the last frame, as x264 looks ahead), the video lasts up to
        it. MP4 ends a track at both its last packet's dts + duration and its last frame's pts
        + duration, and libx264's dts (shifted back for B-frames by the gaps at the start)
        fall short of the pts of a variable-rate video's last frames by a different amount:
        both must reach `end`."""
        if packets and self._first_dts is None:
            self._first_dts = packets[0].dts
        if packets and end is not None and self._first_dts is not None:
            last = packets[-1]
            last.duration = max(1, end - (last.dts - self._first_dts))
            for packet in packets:
                if packet.pts == self._pts:  # the last frame shown
                    packet.duration = max(packet.duration if packet is last else 1,
                                          end - packet.pts)
        for packet in packets:
            out.mux(packet)

    def close(self, at_source_end: bool = False) -> None:
        """Flush the encoder, copy the rest of the sound (up to the video's end), write the
        index. A video with no frames is left as an empty but valid file. The last frame
        lasts 1/fps, or with `at_source_end` (every frame of `audio_from` up to its last was
        written) until that source's video ends, as in the source, where that is after it."""
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            end = self._end(at_source_end)
            self._mux(out, self._video.encode(None), end)
            if self._audio is not None:
                self._audio.until(out, self._seconds(end))
                self._audio.close(out)
        except (self._av.FFmpegError, OSError) as exc:
            raise OutputError(f"writing video {self.path} failed: {exc}; free space or "
                                  "choose another path") from exc
        finally:
            out.close()

    def _end(self, at_source_end: bool) -> int:
        """The video's end, in pts: 1/fps after the last frame, or the source's end."""
        if at_source_end and self._source_end is not None and self.frames_written:
            end = round(self._source_end * self._video.codec_context.time_base.denominator)
            if end > self._pts:
                return end
        return self._pts + self._step

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """Writes RGB frames to .mp4 (mp4v) or .avi (MJPG) with a fixed size and frame rate.

    Frames go to a hidden temporary file beside `path` (same suffix, an ASCII name, so OpenCV
    can take it); `close()` finalises the container and renames it to `path`, so `path` is
    never a half-written video, even after a crash or SIGKILL. `discard()` (or an error inside
    a `with` block) deletes the temporary file and leaves `path` as it was. Ctrl+C inside a
    `with` block is how recordings stop, so it keeps what was recorded, like `close()`.
    """

    takes_times = False  # a fixed rate: write() takes frames only

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        code = FOURCC.get(self.path.suffix.lower())
        if code is None:
            raise OutputError(f"cannot write video {display(self.path)}: unsupported extension "
                              f"{display(self.path.suffix)!r}; use .mp4 (mp4v) or .avi (MJPG)")
        self.size, self.fps, self.frames_written = (int(size[0]), int(size[1])), float(fps), 0
        self._tmp = temp_beside(self.path)
        # A folder whose name is not valid UTF-8 is reached through an ASCII link (cvpath.py).
        self._folder = OpenCvPath(self._tmp.parent)
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(
            os.path.join(self._folder.path, self._tmp.name), cv2.VideoWriter.fourcc(*code), self.fps,
            self.size)
        if not self._writer.isOpened():
            self.discard()
            raise OutputError(f"cannot write video {display(self.path)}: OpenCV could not open a "
                             f"{code} encoder there; check the folder is writable, or try .avi")

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Append one RGB uint8 frame; frames of another size are resized to fit. `time` is
        ignored: the file has a fixed rate (callers repeat frames to keep time)."""
        if self._writer is None:
            raise EmotiscopeError(f"video {display(self.path)} is already closed")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self, at_source_end: bool = False) -> None:
        """Finalise the file and move it to `path`; raises (and leaves `path` as it was) if
        frames were written but nothing reached the disk, or the rename fails. A fixed-rate
        video lasts its frame count / fps, so `at_source_end` (H264Writer's) changes nothing."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        try:
            written = self._tmp.is_file() and self._tmp.stat().st_size > 0
            if self.frames_written and not written:
                raise OutputError(f"writing video {display(self.path)} failed (disk full?); "
                                      "free space or choose another path")
            if self._tmp.is_file():
                os.replace(self._tmp, self.path)
        except OSError as exc:
            raise OutputError(f"cannot write video {display(self.path)}: {exc.strerror or exc}; "
                             "choose another path") from exc
        finally:
            self._remove_temp()

    def discard(self) -> None:
        """Stop writing and delete what was written; `path` is left as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._remove_temp()

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            self._tmp.unlink()  # absent after a successful rename
        self._folder.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None or issubclass(kind, KeyboardInterrupt):
            self.close()
        else:
            self.discard()
