"""Big JPEGs decoded small: libjpeg's DCT scaling gives 1/2, 1/4 or 1/8 of the pixels for a
fraction of the decoding time, where detection only looks at `max_side` pixels anyway.

The faces handed to the classifier keep enough pixels: a photo is reduced only as far as its
decoded long side stays at least REDUCED_MIN_RATIO x max_side, so a face the detector can find
(10+ px at max_side) keeps 20+ px, and one of the classifier's 48 px keeps 96+ px. Boxes come
back in the original photo's pixels, and `min_face` keeps its meaning (original pixels). A group
photo whose first pass (or, where it found none, crowd.py's probe) finds small faces is decoded
again, larger, for crowd.py's finer pass.
EXIF orientation is applied as by io.load_image.

    faces = analyze_photo(recognizer, "big.jpg")   # == recognizer("big.jpg"), but faster
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .crowd import finer_detector, finer_side, look_again, merge
from .detect import ScaledDetector
from .imageheader import read_header
from .images import _read_file, check_size, load_image
from .outputs import display
from .types import Box, FaceEmotion

REDUCED_MIN_RATIO = 2  # decoded long side >= this x the detector's max_side
FACTORS = (8, 4, 2)


def reduction(width: int, height: int, max_side: int, ratio: float = REDUCED_MIN_RATIO) -> int:
    """The largest DCT factor (8, 4, 2) that keeps the long side >= ratio x max_side, else 1
    (max_side 0: full resolution, never reduced)."""
    if max_side <= 0:
        return 1
    return next((k for k in FACTORS if max(width, height) / k >= ratio * max_side), 1)


def decode_reduced(data: bytes, max_side: int, max_pixels: int, name: str = "image bytes",
                   ratio: float = REDUCED_MIN_RATIO) -> tuple[np.ndarray, float, float] | None:
    """(RGB image decoded at 1/k scale, x scale, y scale back to the photo's oriented pixels),
    or None when the data is not a JPEG big enough to gain (then decode it fully). The long
    side stays >= ratio x max_side (`reduction`)."""
    import cv2

    header = read_header(data)
    if header is None or header.format != "JPEG" or header.size is None:
        return None
    width, height = header.size
    factor = reduction(width, height, max_side, ratio)
    if factor == 1:
        return None
    check_size(width, height, name, max_pixels)
    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[factor]  # applies EXIF orientation, like load_image
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        return None  # the full decoder gives the proper error
    if (bgr.shape[1] > bgr.shape[0]) != (width > height) and bgr.shape[0] != bgr.shape[1]:
        width, height = height, width  # EXIF turned it by 90 degrees
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return rgb, width / rgb.shape[1], height / rgb.shape[0]


def analyze_photo(recognizer, source: str | os.PathLike | bytes,
                  name: str | None = None) -> list[FaceEmotion]:
    """Faces of a photo (path or bytes), big JPEGs decoded small; boxes in the photo's pixels.
    No face found: the whole photo, decoded fully, if the assume_crop policy takes it for one.
    `name`: what messages call bytes ("image bytes")."""
    data = source if isinstance(source, bytes) else _read_file(Path(source))
    name = name or ("image bytes" if isinstance(source, bytes) else display(source))
    inner = recognizer.detector
    reduced = None
    if isinstance(inner, ScaledDetector):
        reduced = decode_reduced(data, inner.max_side, recognizer.max_pixels, name)
    if reduced is None:
        image = load_image(data, max_pixels=recognizer.max_pixels, name=name)
        return recognizer.faces(image, photo=True)  # small ones too: face crops (assume_crop)
    image, sx, sy = reduced
    small = copy.copy(inner)  # min_face is in the photo's pixels: in the decoded ones it is less
    small.min_face = max(1, math.floor(inner.min_face / max(sx, sy)))
    small.max_side = max(inner.max_side, 1)
    boxes, looked = look_again(small, image, small.detect(image))  # the probe on this decode
    photo_size = round(image.shape[1] * sx), round(image.shape[0] * sy)
    if side := finer_side(inner, looked, boxes, (image.shape[1], image.shape[0]), photo_size):
        image, boxes, sx, sy = _finer(data, recognizer, inner, side, (image, boxes, sx, sy), name)
    faces = recognizer.classify(image, boxes)
    faces = [replace(face, box=_scaled_box(face.box, sx, sy)) for face in faces]
    faces = [face for face in faces if min(face.box.w, face.box.h) >= inner.min_face]  # as shown
    if faces or not recognizer.may_assume(round(image.shape[1] * sx), round(image.shape[0] * sy)):
        return faces
    full = load_image(data, max_pixels=recognizer.max_pixels, name=name)
    box = recognizer.assumed_box(full)
    return recognizer.classify(full, [box], assumed=True) if box else []


def _finer(data: bytes, recognizer, inner: ScaledDetector, side: int,
           first: tuple[np.ndarray, list[Box], float, float],
           name: str) -> tuple[np.ndarray, list[Box], float, float]:
    """crowd.py's finer pass, looking at `side` pixels, on a decode of the photo at least that
    large. first: (the reduced decode, its boxes, its x and y scales to the photo's pixels);
    returns the same for the larger decode, with both passes' boxes merged."""
    image, boxes, sx, sy = first
    if max(image.shape[:2]) >= side:  # the first decode is already as large (huge photos)
        larger: tuple[np.ndarray, float, float] | None = (image, sx, sy)
    else:
        larger = decode_reduced(data, side, recognizer.max_pixels, name, ratio=1)
    if larger is None:
        larger = load_image(data, max_pixels=recognizer.max_pixels, name=name), 1.0, 1.0
    big, bx, by = larger
    moved = [_scaled_box(box, sx / bx, sy / by) for box in boxes]  # into the larger's pixels
    fine = finer_detector(inner, side, max(bx, by))
    return big, merge(moved, fine.detect(big)), bx, by


def _scaled_box(box, sx: float, sy: float):
    return replace(box, x=round(box.x * sx), y=round(box.y * sy), w=round(box.w * sx),
                   h=round(box.h * sy))
