"""Group photos: a second, finer detection pass where the first found faces near its floor.

A photo longer than `max_side` is detected on a `max_side` copy, where YuNet finds faces down
to about 12-24 px: in a 4000 px class photo every face under ~150 px is lost. When the first
pass finds a face under SMALL_FACE_PX at its scale (the sample photo's smallest is 30 px), a
second pass runs at up to FINE_FACTOR x that scale (capped at the photo's own size and at
FINE_MAX_PIXELS), and the two passes' boxes are merged (non-maximum suppression, one box per
face). Photos whose faces are all larger keep the one pass: the same boxes, the same cost.
When the first pass finds no face at all (a crowd whose faces are all under its floor), a
probe at PROBE_FACTOR x its scale looks again, and the finer pass follows where the probe
finds small faces; a photo with no face costs that probe (a quarter of the finer pass).
Neither runs where `min_face` would drop every face they are there for: one of SMALL_FACE_PX
or more at the first pass's scale (`--min-face 150` on a 4000 px photo, first pass at 640).

Photos only (predict, batch, serve, recognizer(image), analyze): video frames are never given
a second pass (measured in docs/DETECTION.md).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .detect import FaceDetector, ScaledDetector
from .types import Box

SMALL_FACE_PX = 24  # a face this small at the first pass's scale may have smaller neighbours
FINE_FACTOR = 4  # the finer pass's scale, x the first's (YuNet's floor: 4x smaller faces)
PROBE_FACTOR = 2  # no face at the first pass: look again at 2x its scale, faces down to ~6 px
FINE_MAX_PIXELS = 5_000_000  # the finer pass's copy at most (2560x1920; ~1.4 s on one core)
MERGE_IOU = 0.3  # boxes of the two passes overlapping more than this are one face


def fine_side(detector: FaceDetector, width: int, height: int, factor: int = FINE_FACTOR) -> int:
    """The longest side of the finer pass's copy of a width x height photo (`factor` x the
    detector's scale: PROBE_FACTOR for the probe); 0 when there is none (not a ScaledDetector,
    max_side 0 (full size already), a photo within max_side, or a min_face that keeps no face
    the first pass may have missed: SMALL_FACE_PX or more at its scale)."""
    if not isinstance(detector, ScaledDetector) or not detector.max_side:
        return 0
    long, short = max(width, height), max(1, min(width, height))
    if long <= detector.max_side or detector.min_face * detector.max_side >= SMALL_FACE_PX * long:
        return 0
    budget = math.floor(math.sqrt(FINE_MAX_PIXELS * long / short))  # long side of that many px
    side = min(long, factor * detector.max_side, budget)
    return side if side > detector.max_side else 0


def crowded(detector: FaceDetector, boxes: list[Box], width: int, height: int) -> bool:
    """Whether a face of `boxes` (the first pass's, in the width x height image's pixels) was
    under SMALL_FACE_PX at the scale the detector looked at: smaller ones may have been lost."""
    if not fine_side(detector, width, height):
        return False
    scale = detector.max_side / max(width, height)  # type: ignore[attr-defined]
    return any(min(box.w, box.h) * scale < SMALL_FACE_PX for box in boxes)


def finer_detector(detector: ScaledDetector, side: int, pixel_scale: float = 1.0) -> ScaledDetector:
    """A copy of `detector` looking at `side` pixels; pixel_scale: the photo's pixels per pixel
    of the image it will be given (a reduced decode), so min_face keeps its meaning."""
    fine = copy.copy(detector)
    fine.max_side = side
    fine.min_face = max(1, math.floor(detector.min_face / pixel_scale))
    return fine


def merge(first: list[Box], second: list[Box]) -> list[Box]:
    """One box per face of two passes (the higher-scoring where they overlap), left to right."""
    import cv2

    boxes = first + second
    if not first or not second:
        return sorted(boxes, key=lambda b: (b.x, b.y))
    rects = [[b.x, b.y, b.w, b.h] for b in boxes]
    scores = [1.0 + float(b.score) for b in boxes]  # NMSBoxes drops scores <= its threshold (>= 0)
    keep = cv2.dnn.NMSBoxes(rects, scores, 0.0, MERGE_IOU)
    kept = [boxes[int(k)] for k in np.asarray(keep).reshape(-1)]
    return sorted(kept, key=lambda b: (b.x, b.y))


def probe(detector: ScaledDetector, width: int, height: int,
          pixel_scale: float = 1.0) -> ScaledDetector:
    """The detector for a second look at a width x height photo whose first pass found no face:
    PROBE_FACTOR x the first's scale. Only where `fine_side` is not 0 (then neither is this)."""
    return finer_detector(detector, fine_side(detector, width, height, PROBE_FACTOR), pixel_scale)


def look_again(detector: ScaledDetector, image: np.ndarray,
               boxes: list[Box]) -> tuple[list[Box], ScaledDetector]:
    """The first pass's `boxes` of `image` and `detector`; where it found none and `image` is
    longer than its max_side, the probe's boxes and the probe."""
    height, width = image.shape[:2]
    if boxes or not fine_side(detector, width, height):
        return boxes, detector
    looked = probe(detector, width, height)
    return looked.detect(image), looked


def finer_side(detector: FaceDetector, looked: ScaledDetector, boxes: list[Box],
               image_size: tuple[int, int], photo_size: tuple[int, int]) -> int:
    """The finer pass's side (in the photo's pixels) where `looked` (the first pass, or the
    probe: `look_again`) found `boxes` crowded in an image of image_size (width, height; a
    reduced decode of the photo, or the photo) and the finer pass looks closer; else 0."""
    side = fine_side(detector, *photo_size)
    return side if side > looked.max_side and crowded(looked, boxes, *image_size) else 0


def refine(detector: FaceDetector, image: np.ndarray, boxes: list[Box]) -> list[Box]:
    """The first pass's `boxes` of `image`, merged with a finer pass's where it is crowded;
    with none, the probe's boxes (and the finer pass's where the probe finds small faces)."""
    height, width = image.shape[:2]
    if not fine_side(detector, width, height):
        return boxes
    assert isinstance(detector, ScaledDetector)  # fine_side is 0 for any other detector
    boxes, looked = look_again(detector, image, boxes)
    side = finer_side(detector, looked, boxes, (width, height), (width, height))
    return merge(boxes, finer_detector(detector, side).detect(image)) if side else boxes


def detect_photo(detector: FaceDetector, image: np.ndarray) -> list[Box]:
    """A photo's face boxes: the detector's, and a finer pass's where faces are small."""
    return refine(detector, image, detector.detect(image))
