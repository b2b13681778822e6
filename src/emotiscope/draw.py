"""Draw face boxes and "happy 87%" labels. Pure: image in, new image out; no window, no file."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .types import FaceEmotion

# Okabe-Ito colours (RGB), distinguishable with the common colour-vision deficiencies.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
    (0, 114, 178), (213, 94, 0), (204, 121, 167), (255, 255, 255),
)
MIN_SIDE = 240  # smaller images are enlarged so that labels stay readable
# ... but never beyond this longest side: a 3 px high strip is not blown up to gigabytes.
MAX_ENLARGED_SIDE = 2048


def label_colour(label: str, labels: Sequence[str] | None = None) -> tuple[int, int, int]:
    """RGB colour of a label: its position in the model's `labels`, else a stable hash."""
    if labels is not None and label in labels:
        return PALETTE[list(labels).index(label) % len(PALETTE)]
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def annotate(image: np.ndarray, faces: Sequence[FaceEmotion], *,
             labels: Sequence[str] | None = None, min_side: int = MIN_SIDE) -> np.ndarray:
    """Return a copy of an RGB uint8 image with each face boxed and labelled.

    Labels read "happy 87%" (plus "#3" when the face has a track id), one colour per label
    (pass the model's `labels` for a fixed order). Images whose shorter side is below
    `min_side` pixels are enlarged first, so the result may be larger than the input, up to
    MAX_ENLARGED_SIDE pixels on its longer side (never more pixels than max(input, 2048x2048)).
    """
    import cv2

    short, long = min(image.shape[:2]), max(image.shape[:2])
    scale = max(1.0, min(min_side / max(1, short), MAX_ENLARGED_SIDE / max(1, long)))
    out = np.ascontiguousarray(image[:, :, :3] if image.ndim == 3 else
                               cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)).copy()
    if scale > 1.0:
        size = (round(out.shape[1] * scale), round(out.shape[0] * scale))
        out = cv2.resize(out, size, interpolation=cv2.INTER_LINEAR)
    style = _Style.for_image(out.shape[:2])
    for face in faces:
        box = face.box
        corners = (round(box.x * scale), round(box.y * scale),
                   round((box.x + box.w) * scale), round((box.y + box.h) * scale))
        _draw_face(out, corners, _caption(face), label_colour(face.label, labels), style)
    return out


def _caption(face: FaceEmotion) -> str:
    text = f"{face.label} {face.score:.0%}"
    return f"{text} #{face.track_id}" if face.track_id is not None else text


@dataclass(frozen=True)
class _Style:
    """Line and font sizes that grow with the image, so labels read the same at any size."""

    thickness: int
    font_scale: float
    font_thickness: int

    @classmethod
    def for_image(cls, shape: tuple[int, int]) -> _Style:
        side = min(shape)
        return cls(thickness=max(2, round(side / 250)), font_scale=max(0.5, side / 900),
                   font_thickness=max(1, round(side / 500)))


def _draw_face(out: np.ndarray, corners: tuple[int, int, int, int], text: str,
               colour: tuple[int, int, int], style: _Style) -> None:
    import cv2

    x0, y0, x1, y1 = corners
    cv2.rectangle(out, (x0, y0), (x1, y1), colour, style.thickness, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, style.font_scale, style.font_thickness)
    pad = max(2, th // 4)
    height, width = out.shape[:2]
    # Above the box when there is room, else just inside its top edge; never off the image.
    top = y0 - th - base - 2 * pad if y0 - th - base - 2 * pad >= 0 else max(0, y0)
    top = min(top, max(0, height - th - base - 2 * pad))
    left = min(max(0, x0), max(0, width - tw - 2 * pad))
    cv2.rectangle(out, (left, top), (left + tw + 2 * pad, top + th + base + 2 * pad), colour, -1)
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    cv2.putText(out, text, (left + pad, top + pad + th), font, style.font_scale, ink,
                style.font_thickness, cv2.LINE_AA)
