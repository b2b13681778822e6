"""Plain result types.

Coordinates: pixels of the original image, origin at the top-left corner, x to the right,
y down; (x, y) is the box's top-left corner, w and h its width and height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # numpy loads with the recognizer, not with these types
    import numpy as np

    from .classify import EmotionClassifier

# The recognizer's policy for an image in which no face is detected (pipeline.py): kept here,
# with no heavy import, so that command-line parsers can offer the same choices.
ASSUME_CROP = ("auto", "always", "never")


@dataclass(frozen=True)
class Box:
    """A face box in original-image pixels; `score` is the detector's confidence in 0..1;
    `roll` the angle of the eye line in degrees (clockwise in the image, 0 when level or unknown:
    only detectors with landmarks measure it)."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    roll: float = 0.0

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    @classmethod
    def from_edges(cls, x0: float, y0: float, x1: float, y1: float, score: float = 1.0,
                   roll: float = 0.0) -> Box:
        """The box from its left, top, right and bottom edges, each rounded to a pixel."""
        left, top = round(x0), round(y0)
        return cls(left, top, round(x1) - left, round(y1) - top, float(score), float(roll))

    def clipped(self, width: int, height: int) -> Box | None:
        """The part of this box inside a width x height image, or None if nothing is."""
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.w, width), min(self.y + self.h, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0, self.score, self.roll)


@dataclass(frozen=True)
class FaceEmotion:
    """One face: its box, the winning label, and the probability of every label (sum 1).

    `assumed` is True when no detector found this face: the whole image was taken to be a face
    crop (the recognizer's `assume_crop` policy), so the box is the whole image.
    """

    box: Box
    label: str
    scores: dict[str, float] = field(default_factory=dict)
    track_id: int | None = None
    assumed: bool = False

    def __hash__(self) -> int:
        """By value, like Box (the generated hash fails on the `scores` dict): faces can be set
        members and dict keys. Equal faces hash equal, whatever the order of their scores."""
        return hash((self.box, self.label, frozenset(self.scores.items()), self.track_id,
                     self.assumed))

    @property
    def score(self) -> float:
        """Probability of the winning label."""
        return self.scores[self.label]

    # Writing a face out, in one place: every output (predict's JSON lines and CSV, video's
    # rows, the HTTP API, whose schema is server/schemas.FaceOut) goes through these three.

    def as_dict(self, digits: int | None = None) -> dict:
        """JSON-ready: box, label, score, scores, assumed, and track_id when tracked;
        probabilities rounded to `digits` decimals if given."""
        def number(p: float) -> float:
            return round(p, digits) if digits is not None else p

        out = {"box": self.box.as_dict(), "label": self.label, "score": number(self.score),
               "scores": {name: number(p) for name, p in self.scores.items()},
               "assumed": self.assumed}
        if self.track_id is not None:
            out["track_id"] = self.track_id
        return out

    @staticmethod
    def columns(labels: Sequence[str]) -> list[str]:
        """The header of `as_row`'s cells."""
        return ["x", "y", "w", "h", "label", "score", *labels]

    def as_row(self, labels: Sequence[str]) -> list:
        """CSV cells: the box, the label, then its probability and every label's (in the order
        of `labels`) to 4 decimals."""
        b = self.box
        return [b.x, b.y, b.w, b.h, self.label, f"{self.score:.4f}",
                *(f"{self.scores[name]:.4f}" for name in labels)]


class Recognizer(Protocol):
    """What the server, the video analyzer and the worker pool need of a recognizer;
    pipeline.EmotionRecognizer is the one emotiscope makes. Images are RGB uint8 HxWx3."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's labels, in its output order."""
        ...

    @property
    def classifier(self) -> EmotionClassifier:
        """The model; the server's model card shows its file's contract (`classifier.info`)."""
        ...

    @property
    def detector(self) -> object:
        """The face detector; the server's model card names it (its `name`, else its type)."""
        ...

    def detect(self, image: np.ndarray) -> list[Box]:
        """The boxes of the faces a detector found."""
        ...

    def assumed_box(self, image: np.ndarray) -> Box | None:
        """For an image with no face detected: the whole image as a face box, if the
        recognizer's assume_crop policy takes it for a face crop (photos only)."""
        ...

    def classify(self, image: np.ndarray, boxes: Sequence[Box], *,
                 assumed: bool = False) -> list[FaceEmotion]:
        """One FaceEmotion per box, in the boxes' order."""
        ...
