"""Test frames with known face boxes, built from the shipped sample photo (three real people).

The sample photo and its hand-checked boxes (emotiscope/data/sample.json) give three portraits;
these helpers scale, dim, rotate and tile them into frames like those a user would send.
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from emotiscope.images import load_image, sample_image_path
from emotiscope.types import Box

GREY = 128


def _sample_meta() -> dict:
    return json.loads(sample_image_path().with_name("sample.json").read_text())


def sample_boxes() -> list[Box]:
    """The hand-checked face boxes of the whole sample photo."""
    return [Box(f["x"], f["y"], f["w"], f["h"]) for f in _sample_meta()["faces"]]


def portraits() -> list[tuple[np.ndarray, Box]]:
    """The three portrait panels of the sample photo, each with its face box."""
    image = load_image(sample_image_path())
    out = []
    for (x0, x1), box in zip(_sample_meta()["panels"], sample_boxes(), strict=True):
        out.append((np.ascontiguousarray(image[:, x0:x1]), Box(box.x - x0, box.y, box.w, box.h)))
    return out


def _scaled(panel: np.ndarray, box: Box, scale: float) -> tuple[np.ndarray, Box]:
    size = (max(1, round(panel.shape[1] * scale)), max(1, round(panel.shape[0] * scale)))
    small = cv2.resize(panel, size, interpolation=cv2.INTER_AREA)
    return small, Box(round(box.x * scale), round(box.y * scale), round(box.w * scale),
                      round(box.h * scale))


def tile(cells: list[tuple[np.ndarray, Box]], width: int, height: int,
         cols: int) -> tuple[np.ndarray, list[Box]]:
    """Place panels on a grey canvas in a grid of `cols` columns, each centred in its cell."""
    rows = -(-len(cells) // cols)
    cell_w, cell_h = width // cols, height // rows
    canvas = np.full((height, width, 3), GREY, np.uint8)
    boxes = []
    for k, (panel, box) in enumerate(cells):
        scale = min(1.0, cell_w / panel.shape[1], cell_h / panel.shape[0])
        panel, box = _scaled(panel, box, scale) if scale < 1.0 else (panel, box)
        x = (k % cols) * cell_w + (cell_w - panel.shape[1]) // 2
        y = (k // cols) * cell_h + (cell_h - panel.shape[0]) // 2
        canvas[y:y + panel.shape[0], x:x + panel.shape[1]] = panel
        boxes.append(Box(box.x + x, box.y + y, box.w, box.h))
    return canvas, boxes


def one_face_frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, list[Box]]:
    """One frontal face (about 140 px wide) in a 640x480 frame."""
    return tile([portraits()[0]], width, height, cols=1)


def group_frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, list[Box]]:
    """Six faces (two of each portrait, 25-70 px wide) in a 640x480 frame."""
    return tile(portraits() * 2, width, height, cols=3)


def small_faces_frame(face_px: int, width: int = 640, height: int = 480,
                      count: int = 6, cols: int = 3) -> tuple[np.ndarray, list[Box]]:
    """`count` faces, each `face_px` pixels wide (less where a cell is too small for its
    portrait), in a width x height frame, `cols` to a row."""
    cells = [_scaled(panel, box, face_px / box.w) for panel, box in portraits()]
    return tile((cells * count)[:count], width, height, cols=cols)


def dim(image: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """Darker copy with a little sensor noise, as in a dim room."""
    noise = np.random.default_rng(seed).normal(0.0, 2.0, image.shape)
    return np.clip(image * factor + noise, 0, 255).astype(np.uint8)


def rotate(image: np.ndarray, boxes: list[Box], degrees: float) -> tuple[np.ndarray, list[Box]]:
    """Rotate counter-clockwise on a grown grey canvas; boxes keep their size, centres move."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += new_w / 2 - w / 2
    matrix[1, 2] += new_h / 2 - h / 2
    out = cv2.warpAffine(image, matrix, (new_w, new_h), borderValue=(GREY, GREY, GREY))
    moved = []
    for b in boxes:
        cx, cy = matrix @ np.array([b.x + b.w / 2, b.y + b.h / 2, 1.0])
        moved.append(Box(round(cx - b.w / 2), round(cy - b.h / 2), b.w, b.h))
    return out, moved


def matches(found: list[Box], truth: list[Box]) -> tuple[int, int]:
    """(faces found, false positives): a hit has its centre inside a true box, similar size."""
    left = list(truth)
    hits = 0
    for box in found:
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        for t in left:
            ratio = np.sqrt(box.area / t.area)
            if t.x <= cx <= t.x + t.w and t.y <= cy <= t.y + t.h and 0.5 <= ratio <= 2.5:
                left.remove(t)
                hits += 1
                break
    return hits, len(found) - hits
