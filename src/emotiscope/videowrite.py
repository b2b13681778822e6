"""Annotated videos people can play: H.264 MP4 with the input's sound, written with PyAV.

OpenCV's wheels can only write MPEG-4 Part 2 ("mp4v"), which no browser plays, and never
sound. PyAV (`pip install ".[video]"`) bundles FFmpeg with libx264, so `.mp4` outputs become
H.264 (yuv420p, the profile every browser and phone plays) with the moov index at the front
(+faststart, so playback starts before the download ends), and the input's audio track is
copied (re-encoded to AAC only when MP4 cannot hold its codec). Without PyAV, or for `.avi`,
`open_writer` falls back to `VideoWriter` (OpenCV: mp4v / MJPG, no sound).

Frames are RGB uint8 HxWx3; sizes are (width, height) in pixels.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .cvpath import OpenCvPath
from .errors import EmotiscopeError, OutputError
from .outputs import display, temp_beside

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # codecs every opencv-python wheel can write
# Audio codecs the MP4 muxer takes as they are; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}


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


class _Audio:
    """The first audio track of a file, muxed into `out` in step with the video."""

    def __init__(self, av, out, source: str | os.PathLike) -> None:
        self._input = av.open(os.fspath(source))
        self.stream = self._input.streams.audio[0]
        video = self._input.streams.video
        start = video[0].start_time if video and video[0].start_time else 0
        # the output's video starts at 0 where the input's first video frame was
        self._offset = round(start * video[0].time_base / self.stream.time_base) if start else 0
        if self.stream.codec_context.codec.canonical_name in MP4_AUDIO:
            self.out, self._encode = out.add_stream_from_template(self.stream), False
        else:
            self.out = out.add_stream("aac", rate=self.stream.codec_context.sample_rate)
            self._encode = True
        self._packets: Iterator = self._input.demux(self.stream)
        self._pending = None

    def _next(self):
        if self._pending is None:
            for packet in self._packets:
                if packet.dts is not None:  # the demuxer's empty flush packets have none
                    self._pending = packet
                    break
        return self._pending

    def until(self, out, seconds: float) -> None:
        """Mux the track's packets that start before `seconds` of output time."""
        while (packet := self._next()) is not None:
            start = (packet.pts if packet.pts is not None else packet.dts) - self._offset
            if start * self.stream.time_base >= seconds:
                return
            self._pending = None
            if self._encode:
                for frame in self.stream.decode(packet):
                    frame.pts = None
                    for encoded in self.out.encode(frame):
                        out.mux(encoded)
            else:
                packet.pts = None if packet.pts is None else packet.pts - self._offset
                packet.dts -= self._offset
                packet.stream = self.out
                out.mux(packet)

    def close(self, out) -> None:
        if self._encode:
            for encoded in self.out.encode(None):
                out.mux(encoded)
        self._input.close()


def _audio_track(av, out, source) -> _Audio | None:
    """The input's sound, or None when it has none or PyAV cannot read it."""
    try:
        with av.open(os.fspath(source)) as probe:
            if not probe.streams.audio:
                return None
        return _Audio(av, out, source)
    except (av.FFmpegError, OSError, ValueError):
        return None


class H264Writer:
    """Writes RGB frames to an H.264 MP4 (libx264, yuv420p, +faststart) and copies the audio
    of `audio_from` up to the end of the video. Odd sizes lose their last row / column
    (yuv420p needs even ones). Always close it: closing writes the index."""

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
        self._video = self._out.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001),
                                           options={"crf": str(crf), "preset": "veryfast"})
        self._video.width, self._video.height = self.size
        self._video.pix_fmt = "yuv420p"
        self._audio = _audio_track(av, self._out, audio_from) if audio_from else None
        self.has_audio = self._audio is not None
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame; frames of another size are resized to fit."""
        if self._out is None:
            raise EmotiscopeError(f"video {self.path} is already closed")
        if (frame.shape[1], frame.shape[0]) != self.size:
            import cv2

            if frame.shape[1] // 2 * 2 == self.size[0] and frame.shape[0] // 2 * 2 == self.size[1]:
                frame = frame[:self.size[1], :self.size[0]]
            else:
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        image = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        image.pts = self.frames_written
        for packet in self._video.encode(image):
            self._out.mux(packet)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.until(self._out, self.frames_written / self.fps)

    def close(self) -> None:
        """Flush the encoder, copy the rest of the sound (up to the video's end), write the
        index. A video with no frames is left as an empty but valid file."""
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            for packet in self._video.encode(None):
                out.mux(packet)
            if self._audio is not None:
                self._audio.until(out, self.frames_written / self.fps)
                self._audio.close(out)
        except (self._av.FFmpegError, OSError) as exc:
            raise OutputError(f"writing video {self.path} failed: {exc}; free space or "
                                  "choose another path") from exc
        finally:
            out.close()

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

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame; frames of another size are resized to fit."""
        if self._writer is None:
            raise EmotiscopeError(f"video {display(self.path)} is already closed")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finalise the file and move it to `path`; raises (and leaves `path` as it was) if
        frames were written but nothing reached the disk, or the rename fails."""
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
