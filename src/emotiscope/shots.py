"""Scene cuts, and whether a followed box still shows the face it was detected on.

Both are cheap tests on grey (single-channel uint8) frames, run on every frame of a video:

- `CutDetector` flags a hard cut when the mean absolute difference between 64x36 thumbnails
  of consecutive frames is both large (>= `min_change` grey levels) and an outlier against
  the recent frames (>= `ratio` times their mean). The second test keeps fast pans and
  camera shake, whose differences are large on every frame, from counting as cuts.
  About 1 ms per 640x480 frame.
- `FaceTemplate` keeps a 24x24 grey copy of a face at its last detection; `matches(grey, box)`
  is the normalised correlation of that copy with what the box covers now. A box that slid
  onto a curtain or a wall scores near 0, a face that turned or changed expression over a
  few frames stays well above `min_correlation`.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from .types import Box

THUMB = (64, 36)  # width, height of the thumbnail compared between frames
TEMPLATE = (24, 24)


def thumbnail(grey: np.ndarray) -> np.ndarray:
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


class CutDetector:
    """`is_cut(grey)` per frame, in order: True on the first frame of a new shot.

    min_change: smallest mean absolute thumbnail difference (grey levels, 0-255) that can be
    a cut; ratio: how many times the mean of the last `history` differences it must exceed.
    """

    def __init__(self, min_change: float = 20.0, ratio: float = 3.0, history: int = 8) -> None:
        self.min_change, self.ratio = min_change, ratio
        self._recent: deque[float] = deque(maxlen=history)
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._recent.clear()
        self._prev = None

    def is_cut(self, grey: np.ndarray) -> bool:
        thumb = thumbnail(grey)
        prev, self._prev = self._prev, thumb
        if prev is None:
            return False
        change = float(np.mean(np.abs(thumb - prev)))
        usual = float(np.mean(self._recent)) if self._recent else 0.0
        self._recent.append(change)
        return change >= self.min_change and change >= self.ratio * max(usual, 1.0)


def _crop(grey: np.ndarray, box: Box) -> np.ndarray | None:
    """The box's pixels (clipped to the frame) resized to TEMPLATE, or None if too small."""
    h, w = grey.shape
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.w, w), min(box.y + box.h, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return cv2.resize(grey[y0:y1, x0:x1], TEMPLATE, interpolation=cv2.INTER_AREA)


class FaceTemplate:
    """A face as it looked when it was detected, to check a followed box against."""

    def __init__(self, grey: np.ndarray, box: Box, min_correlation: float = 0.5) -> None:
        self.patch = _crop(grey, box)
        self.min_correlation = min_correlation

    def correlation(self, grey: np.ndarray, box: Box) -> float:
        """Normalised correlation (-1..1) of the template with the box's pixels now."""
        now = _crop(grey, box)
        if self.patch is None or now is None:
            return 0.0
        a = self.patch.astype(np.float32) - self.patch.mean()
        b = now.astype(np.float32) - now.mean()
        norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
        if norm < 1e-6:  # a flat patch: nothing to compare, so no evidence of a face
            return 0.0
        return float((a * b).sum() / norm)

    def matches(self, grey: np.ndarray, box: Box) -> bool:
        return self.correlation(grey, box) >= self.min_correlation
