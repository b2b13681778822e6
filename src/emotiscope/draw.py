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


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 exclusive


def annotate(image: np.ndarray, faces: Sequence[FaceEmotion], *,
             labels: Sequence[str] | None = None, min_side: int = MIN_SIDE) -> np.ndarray:
    """Return a copy of an RGB uint8 image with each face boxed, numbered and labelled.

    Any array `load_image` takes is taken the same way (grey, RGBA, HxWx1; uint16, bool, float
    0..1 or 0..255), so the picture shows what was analysed; InputError for other arrays.

    Labels read "1 happy 87%": the face's number in `faces` (1 = first, as `predict`'s `face`
    field), or "#3" when the face has a track id; "(assumed)" and a dashed box mark a face
    that was not detected but assumed (FaceEmotion.assumed). One colour per label (pass the
    model's `labels` for a fixed order). Labels are placed so that they do not overlap each
    other (see place_labels). Images whose shorter side is below `min_side` pixels are enlarged
    first, so the result may be larger than the input, up to MAX_ENLARGED_SIDE pixels on its
    longer side (never more pixels than max(input, 2048x2048)).
    """
    import cv2

    from .images import load_image

    _check_faces(faces)
    out = load_image(image, name="the image to annotate")
    out = out.copy() if np.may_share_memory(out, image) else out  # never draw on the input
    scale = _scale(out.shape[:2], min_side)
    if scale > 1.0:
        size = (round(out.shape[1] * scale), round(out.shape[0] * scale))
        out = cv2.resize(out, size, interpolation=cv2.INTER_LINEAR)
    style = _Style.for_image(out.shape[:2])
    boxes = [_corners(face, scale) for face in faces]
    captions = [_caption(face, k) for k, face in enumerate(faces, start=1)]
    rects = place_labels(boxes, [style.label_size(text) for text in captions], out.shape[:2])
    for face, box in zip(faces, boxes, strict=True):
        _draw_box(out, box, label_colour(face.label, labels), style, dashed=face.assumed)
    for face, box, text, rect in zip(faces, boxes, captions, rects, strict=True):
        _draw_label(out, box, rect, text, label_colour(face.label, labels), style)
    return out


def _check_faces(faces: object) -> None:
    """InputError unless `faces` is a list (or other sequence) of FaceEmotion: a generator would
    be used up by the first of the passes annotate makes over it."""
    from .errors import InputError

    if not isinstance(faces, Sequence) or isinstance(faces, str | bytes):
        what = f"a {type(faces).__name__}"
    else:
        other = next((f for f in faces if not isinstance(f, FaceEmotion)), None)
        if other is None:
            return
        what = f"a {type(faces).__name__} holding a {type(other).__name__}"
    raise InputError(f"annotate takes a list of FaceEmotion (what recognizer(image) and "
                     f"emotiscope.analyze return), got {what}; for one face pass [face]")


def label_rects(image_shape: tuple[int, ...], faces: Sequence[FaceEmotion], *,
                min_side: int = MIN_SIDE) -> list[Rect]:
    """Where `annotate` puts each face's label, in the annotated image's pixels."""
    height, width = image_shape[0], image_shape[1]
    scale = _scale((height, width), min_side)
    shape = (round(height * scale), round(width * scale)) if scale > 1.0 else (height, width)
    style = _Style.for_image(shape)
    sizes = [style.label_size(_caption(face, k)) for k, face in enumerate(faces, start=1)]
    return place_labels([_corners(face, scale) for face in faces], sizes, shape)


def _scale(shape: tuple[int, int], min_side: int) -> float:
    short, long = min(shape), max(shape)
    return max(1.0, min(min_side / max(1, short), MAX_ENLARGED_SIDE / max(1, long)))


def _corners(face: FaceEmotion, scale: float) -> Rect:
    box = face.box
    return (round(box.x * scale), round(box.y * scale),
            round((box.x + box.w) * scale), round((box.y + box.h) * scale))


def _caption(face: FaceEmotion, number: int | None = None) -> str:
    text = f"{face.label} {face.score:.0%}"
    if face.track_id is not None:
        text = f"#{face.track_id} {text}"
    elif number is not None:
        text = f"{number} {text}"
    return f"{text} (assumed)" if face.assumed else text


def place_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]],
                 shape: tuple[int, int]) -> list[Rect]:
    """Greedy label placement: for each box in turn, its label of `sizes` (width, height) goes
    above the box, else below, else inside its top, each shifted step by step away from the box
    and sideways, at the first place inside the image (height, width) that meets no label
    already placed and, if possible, no other face; failing that, the free place nearest to the
    box anywhere in the image (drawn with a leader line); with no free place at all, the place
    near the box that overlaps placed labels least. Places are tested in numpy arrays, so a
    crowd of hundreds of faces takes a second or two, not minutes."""
    all_boxes = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    placed = np.zeros((0, 4), dtype=np.int64)
    for k, (box, size) in enumerate(zip(boxes, sizes, strict=True)):
        spots = np.array(list(_candidates(box, size, shape)), dtype=np.int64).reshape(-1, 4)
        free = _overlaps(spots, placed).sum(1) == 0
        clear = free & (_overlaps(spots, np.delete(all_boxes, k, axis=0)).sum(1) == 0)
        if clear.any():
            best = spots[clear.argmax()]
        elif free.any():
            best = spots[free.argmax()]
        else:
            best = _free_farther(box, size, shape, placed)
            if best is None:
                best = spots[_overlaps(spots, placed).sum(1).argmin()]
        placed = np.vstack([placed, best[None]])
    return [tuple(int(v) for v in r) for r in placed]  # type: ignore[misc]


def _candidates(box: Rect, size: tuple[int, int], shape: tuple[int, int]):
    """Label rectangles near `box`, nearest first: above and below only where the label fits
    in the image without covering the box; inside the box's top always (clipped into the image)."""
    x0, y0, x1, y1 = box
    w, h = size
    height, width = shape
    xs = [x0, x1 - w] + [x0 + d * sign * h for d in range(1, 6) for sign in (-1, 1)]
    for step in range(0, 8):
        shift = step * h // 2
        tops = [y0 - h - shift, y1 + shift]
        tops = [y for y in tops if 0 <= y <= height - h]
        if step == 0 or y0 + shift + h <= y1:  # inside, moving down while it stays inside
            tops.append(min(max(0, y0 + shift), max(0, height - h)))
        for y in tops:
            for x in xs:
                x = min(max(0, x), max(0, width - w))
                yield (x, y, x + w, y + h)


def _free_farther(box: Rect, size: tuple[int, int], shape: tuple[int, int],
                  placed: np.ndarray, chunk: int = 4096) -> np.ndarray | None:
    """The label place nearest to the box's top-left corner, on a grid over the whole image,
    that meets no placed label; None when there is none."""
    w, h = size
    height, width = shape
    step = max(2, h // 2)
    ys, xs = np.meshgrid(np.arange(0, max(1, height - h + 1), step),
                         np.arange(0, max(1, width - w + 1), step), indexing="ij")
    spots = np.stack([xs, ys, xs + w, ys + h], axis=-1).reshape(-1, 4)
    order = np.argsort(np.abs(spots[:, 0] - box[0]) + np.abs(spots[:, 3] - box[1]), kind="stable")
    spots = spots[order]
    for start in range(0, len(spots), chunk):
        part = spots[start:start + chunk]
        free = _overlaps(part, placed).sum(1) == 0
        if free.any():
            return part[free.argmax()]
    return None


def _overlaps(rects: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Area shared by each of `rects` (n, 4) with each of `others` (m, 4): (n, m), 0 where they
    only touch or are apart."""
    a, b = rects[:, None, :], others[None, :, :]
    dx = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    dy = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.maximum(dx, 0) * np.maximum(dy, 0)


@dataclass(frozen=True)
class _Style:
    """Line and font sizes that grow with the image, within bounds, so labels read the same at
    any size: about 2.2 % of the shorter side high, never under 11 px nor over 60 px."""

    thickness: int
    font_scale: float
    font_thickness: int

    @classmethod
    def for_image(cls, shape: tuple[int, int]) -> _Style:
        side = min(shape)
        font_scale = min(max(0.5, side / 900), 2.75)
        return cls(thickness=max(2, round(side / 250)), font_scale=font_scale,
                   font_thickness=max(1, round(font_scale * 1.1)))

    @property
    def pad(self) -> int:
        return max(2, round(self.font_scale * 4))

    def label_size(self, text: str) -> tuple[int, int]:
        """(width, height) of the filled label rectangle for `text`."""
        import cv2

        (tw, th), base = cv2.getTextSize(text, FONT, self.font_scale, self.font_thickness)
        return tw + 2 * self.pad, th + base + 2 * self.pad


FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, without importing cv2 here


def _draw_box(out: np.ndarray, box: Rect, colour: tuple[int, int, int], style: _Style, *,
              dashed: bool) -> None:
    import cv2

    x0, y0, x1, y1 = box
    if not dashed:
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, style.thickness, cv2.LINE_AA)
        return
    dash = max(4, 3 * style.thickness)
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)),
                               ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * dash):
            end = min(length, start + dash)
            p = (ax + (bx - ax) * start // max(1, length), ay + (by - ay) * start // max(1, length))
            q = (ax + (bx - ax) * end // max(1, length), ay + (by - ay) * end // max(1, length))
            cv2.line(out, p, q, colour, style.thickness, cv2.LINE_AA)


def _draw_label(out: np.ndarray, box: Rect, rect: Rect, text: str,
                colour: tuple[int, int, int], style: _Style) -> None:
    import cv2

    x0, y0, x1, y1 = rect
    if rect[3] < box[1] - style.thickness or rect[1] > box[3] + style.thickness \
            or rect[2] < box[0] or rect[0] > box[2]:  # moved away from its face: a leader line
        target = (min(max(x0, box[0]), box[2]), box[1] if y1 <= box[1] else box[3])
        cv2.line(out, (min(max(target[0], x0), x1 - 1), y1 if y1 <= box[1] else y0), target,
                 colour, max(1, style.thickness // 2), cv2.LINE_AA)
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    (_, th), _ = cv2.getTextSize(text, FONT, style.font_scale, style.font_thickness)
    cv2.putText(out, text, (x0 + style.pad, y0 + style.pad + th), FONT, style.font_scale, ink,
                style.font_thickness, cv2.LINE_AA)
