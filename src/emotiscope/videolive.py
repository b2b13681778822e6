"""The newest frame of a video source, read in a thread: what `webcam` shows live."""

from __future__ import annotations

import threading
import time

import numpy as np

from .videoread import VideoSource


class LatestFrameReader:
    """Reads a source in a thread and keeps only the newest frame, so a slow consumer skips
    frames instead of falling behind. Files are paced at their frames' own times, like a camera.

    `latest()` waits for a frame newer than the last one returned: (frame, index, time), or
    None once the source has ended (or after `timeout` seconds). `time` is in seconds: a
    file's frame time (variable rates included), a camera's or stream's capture time on the
    clock since the reader started (cameras often misreport their rate and timestamps).
    `disconnected` tells a camera or stream that stopped.
    """

    def __init__(self, source: VideoSource, realtime: bool | None = None) -> None:
        self.source = source
        self.realtime = source.is_file if realtime is None else realtime
        self.disconnected = False
        self._frame: np.ndarray | None = None
        self._index, self._taken, self._time = -1, -1, 0.0
        self._ended = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emotiscope-reader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            frame = self.source.read()
            if frame is None:
                self.disconnected = not self.source.is_file
                break
            index = self.source.index  # skipped undecodable frames keep their place
            stamp = self.source.time if self.source.is_file else time.perf_counter() - start
            if self.realtime:  # the frame's own time: right for variable frame rates too
                delay = start + self.source.time - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
            with self._cond:
                self._frame, self._index, self._time = frame, index, stamp
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def latest(self, timeout: float | None = None) -> tuple[np.ndarray, int, float] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._index > self._taken or self._ended, timeout)
            if self._index <= self._taken:
                return None
            self._taken = self._index
            assert self._frame is not None, "set together with _index, which is past _taken here"
            return self._frame, self._index, self._time

    @property
    def ended(self) -> bool:
        """True once the source has no more frames (end of file, or a camera that stopped)."""
        return self._ended

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
