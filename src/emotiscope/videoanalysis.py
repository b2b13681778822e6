"""Faces and emotions through a video: detect every N frames, follow faces in between.

    >>> from emotiscope.options import RecognizerOptions
    >>> from emotiscope.videoanalysis import VideoAnalyzer
    >>> analyzer = VideoAnalyzer(RecognizerOptions(), detect_every=5, smooth=0.5)
    >>> for result in analyzer.run_file("talk.mp4"):
    ...     print(result.time, [(f.track_id, f.label) for f in result.faces])

Between detections each face box is moved by the median optical flow of corner points
inside it (pyramidal Lucas-Kanade), which costs about a millisecond where the detector costs
tens. A followed box is dropped when its flow fails or its pixels no longer match the face
detected there (the detector then runs at once), and a hard cut (shots.CutDetector) ends
every track and re-detects on the cut frame. Every frame's faces are classified in one batch;
`track.FaceTracker` gives them ids and smooths their probabilities. Decoding and encoding
run in their own threads, joined by bounded queues, so they overlap with inference (OpenCV
and ONNX Runtime release the GIL).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from .images import load_image
from .options import RecognizerOptions
from .shots import CutDetector, FaceTemplate
from .track import FaceTracker, check_tracking
from .types import Box, FaceEmotion, Recognizer
from .videoread import VideoSource
from .videowrite import H264Writer, VideoWriter

_DONE = object()


@dataclass
class FrameResult:
    """One analysed frame: index from 0, time in seconds, the RGB image and its faces."""

    index: int
    time: float
    image: np.ndarray = field(repr=False)
    faces: list[FaceEmotion]
    detected: bool = False  # True when the face detector ran on this frame
    cut: bool = False  # True on the first frame of a new shot (a hard cut)


def clip_box(box: Box, width: int, height: int, min_side: int = 4) -> Box | None:
    """The part of `box` inside a width x height frame, or None if (almost) nothing is."""
    inside = box.clipped(width, height)
    if inside is None or min(inside.w, inside.h) < min_side or inside.area < box.area / 4:
        return None
    return inside


def _flow(before: np.ndarray, after: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade: where `points` of `before` went in `after`, and 1 where found."""
    # OpenCV's stub makes nextPts required, but None asks OpenCV to allocate it (as its own
    # tutorial calls this function)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]
        before, after, points, None, winSize=(15, 15), maxLevel=2)
    return moved, status


def shift_box(prev_grey: np.ndarray, grey: np.ndarray, box: Box) -> Box | None:
    """Move `box` from the previous grey frame to this one by the median optical flow of the
    corners inside it; its size follows the spread of those points (0.8x..1.25x per frame).

    Points are tracked forward and back again; only those that return within 1 px count.
    Returns None when the flow fails (fewer than 4 such points, or fewer than half of those
    found): the box is lost, not carried over whatever is there now."""
    h, w = grey.shape
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.w, w), min(box.y + box.h, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    points = cv2.goodFeaturesToTrack(prev_grey[y0:y1, x0:x1], 40, 0.01,
                                     max(2.0, min(x1 - x0, y1 - y0) / 12))
    if points is None or len(points) < 4:
        return None
    points = (points + np.array([x0, y0], np.float32)).astype(np.float32)
    moved, status = _flow(prev_grey, grey, points)
    back, status_back = _flow(grey, prev_grey, moved)
    error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
    ok = (status.ravel() == 1) & (status_back.ravel() == 1) & (error < 1.0)
    if ok.sum() < max(4, len(points) // 2):
        return None
    before, after = points[ok].reshape(-1, 2), moved[ok].reshape(-1, 2)
    dx, dy = np.median(after - before, axis=0)
    spread0 = np.median(np.linalg.norm(before - np.median(before, axis=0), axis=1))
    spread1 = np.median(np.linalg.norm(after - np.median(after, axis=0), axis=1))
    scale = float(np.clip(spread1 / spread0, 0.8, 1.25)) if spread0 > 1 else 1.0
    cx, cy = box.x + box.w / 2 + dx, box.y + box.h / 2 + dy
    bw, bh = max(1, round(box.w * scale)), max(1, round(box.h * scale))
    return Box(round(cx - bw / 2), round(cy - bh / 2), bw, bh, box.score, box.roll)


def threaded(items: Iterable, maxsize: int = 8) -> Iterator:
    """Iterate `items` in a background thread, `maxsize` ahead at most; errors re-raise here.
    Leaving the loop early stops the producer."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def put(item) -> bool:
        """Queue an item unless the consumer has gone; False once it has."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="emotiscope-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)


class BackgroundWriter:
    """Renders and writes frames in a thread: `submit(result)`; `close()` finalises the video
    and re-raises any error from the thread. `render` maps a FrameResult to an RGB image.

    A writer that `takes_times` (H264Writer) shows each frame at its own time, so a
    variable-rate input keeps its timing and a gap in the results' indexes (frames the source
    could not decode) holds the frame before it. A fixed-rate writer (VideoWriter) gets that
    frame again for each one missing (the first one, for a gap at the start), so the video
    keeps the source's frame count and length."""

    def __init__(self, writer: VideoWriter | H264Writer, render: Callable[[FrameResult], np.ndarray],
                 maxsize: int = 8) -> None:
        self.writer, self.render = writer, render
        self._timed = bool(getattr(writer, "takes_times", False))
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._at_source_end = False
        self._thread = threading.Thread(target=self._loop, name="emotiscope-encode", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        previous, written = None, 0  # the last image written; frames written
        while (result := self._queue.get()) is not _DONE:
            if self._error is None:
                try:
                    image = self.render(result)
                    if self._timed:
                        self.writer.write(image, time=result.time)
                        continue
                    for _ in range(result.index - written):
                        self.writer.write(image if previous is None else previous)
                    self.writer.write(image)
                    previous, written = image, max(written, result.index) + 1
                except BaseException as exc:  # noqa: BLE001 - re-raised by submit/close
                    self._error = exc

    def submit(self, result: FrameResult) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(result)

    def source_ended(self) -> None:
        """Every frame of the source, up to its last, was submitted: a timed writer's video
        then ends where the source's does (its last frame keeps its length), not 1/fps after
        the last frame."""
        self._at_source_end = True

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        try:
            self.writer.close(at_source_end=self._at_source_end)
        finally:
            if self._error is not None:
                raise self._error


class VideoAnalyzer:
    """Runs a recognizer over frames: detection every `detect_every` frames, optical-flow
    tracking in between, tracked ids, probabilities smoothed over `smooth` seconds; a face
    unseen for more than `keep_for` seconds loses its id.

    `recognizer` is a Recognizer (an EmotionRecognizer, or anything with its `labels`,
    `detect` and `classify`), or the RecognizerOptions to build an EmotionRecognizer with.
    """

    def __init__(self, recognizer: Recognizer | RecognizerOptions, *, detect_every: int = 5,
                 smooth: float = 0.5, keep_for: float = 1.0) -> None:
        check_tracking(smooth, keep_for, detect_every=detect_every)
        if isinstance(recognizer, RecognizerOptions):
            from .pipeline import EmotionRecognizer

            recognizer = EmotionRecognizer(recognizer)
        self.recognizer: Recognizer = recognizer
        self.labels = tuple(recognizer.labels)
        self.detect_every = detect_every
        self.tracker = FaceTracker(self.labels, smooth=smooth, keep_for=keep_for)
        self.cuts = CutDetector()
        self.last_cut = False
        self.reset()

    def reset(self) -> None:
        """Start a new stream: forget tracks, ids and the previous frame."""
        self.tracker.reset()
        self.cuts.reset()
        self._prev_grey: np.ndarray | None = None
        self._boxes: list[Box] = []
        self._templates: list[FaceTemplate] = []
        self._count = 0  # frames processed
        self._since_detect = 0  # frames since the detector last ran

    def follow(self, prev_grey: np.ndarray, grey: np.ndarray
               ) -> tuple[list[Box], list[FaceTemplate], bool]:
        """The last frame's boxes moved from it (`prev_grey`) into this one by optical flow,
        keeping only those whose flow held and whose pixels still look like the face detected
        there; their templates; and whether any box was lost."""
        height, width = grey.shape
        kept, templates = [], []
        for box, template in zip(self._boxes, self._templates, strict=True):
            moved = shift_box(prev_grey, grey, box)
            moved = clip_box(moved, width, height) if moved is not None else None
            if moved is not None and template.matches(grey, moved):
                kept.append(moved)
                templates.append(template)
        return kept, templates, len(kept) < len(self._boxes)

    def boxes_for(self, image: np.ndarray, grey: np.ndarray) -> tuple[list[Box], bool, bool]:
        """This frame's face boxes, whether the detector produced them, and whether the frame
        starts a new shot. A cut ends every track; a lost box makes the detector run now."""
        cut = self.cuts.is_cut(grey)
        if cut:
            self.tracker.end_all()
        prev = self._prev_grey
        same_size = prev is not None and prev.shape == grey.shape
        if prev is not None and same_size and not cut and self._since_detect < self.detect_every:
            boxes, self._templates, lost = self.follow(prev, grey)
            if not lost:
                return boxes, False, cut
        # Only detected faces: a video frame is never taken for a face crop (assume_crop).
        return self.recognizer.detect(image), True, cut

    def process(self, image: np.ndarray, time: float) -> tuple[list[FaceEmotion], bool]:
        """One RGB frame at `time` seconds -> tracked, smoothed faces, and whether detected.
        Any array `load_image` takes is taken as it takes it (grey, RGBA, float, ...)."""
        image = load_image(image, name="frame")  # an RGB uint8 frame as it is, no copy
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        boxes, detected, self.last_cut = self.boxes_for(image, grey)
        classified = self.recognizer.classify(image, boxes) if boxes else []
        boxes = [f.box for f in classified]
        if detected:
            self._templates = [FaceTemplate(grey, b) for b in boxes]
        probs = np.array([[f.scores[label] for label in self.labels] for f in classified],
                         dtype=np.float64).reshape(len(classified), len(self.labels))
        faces = self.tracker.update(boxes, probs, time)
        self._prev_grey, self._boxes, self._count = grey, boxes, self._count + 1
        self._since_detect = 1 if detected else self._since_detect + 1
        return faces, detected

    def run(self, frames: Iterable[np.ndarray] | VideoSource, fps: float) -> Iterator[FrameResult]:
        """Analyse RGB frames at `fps` frames per second, decoding them in a thread. Frames
        are numbered from 0; a VideoSource's keep their place in the source (`timed`), so
        an undecodable frame it skipped leaves a gap instead of moving the later ones, and
        their own times (`VideoSource.time`: right for variable frame rates too)."""
        self.reset()
        timed = (frames.timed() if isinstance(frames, VideoSource)
                 else ((index, index / fps, image) for index, image in enumerate(frames)))
        for index, time, image in threaded(timed):
            faces, detected = self.process(image, time)
            yield FrameResult(index, time, image, faces, detected, self.last_cut)

    def run_file(self, path: str | os.PathLike) -> Iterator[FrameResult]:
        """Analyse a video file (or camera index / stream URL) frame by frame."""
        with VideoSource(path) as source:
            yield from self.run(source, source.fps)
