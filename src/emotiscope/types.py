"""Plain result types.

Coordinates: pixels of the original image, origin at the top-left corner, x to the right,
y down; (x, y) is the box's top-left corner, w and h its width and height.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The recognizer's policy for an image in which no face is detected (pipeline.py): kept here,
# with no heavy import, so that command-line parsers can offer the same choices.
ASSUME_CROP = ("auto", "always", "never")


@dataclass(frozen=True)
class Box:
    """A face box in original-image pixels; `score` is the detector's confidence in 0..1."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


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

    @property
    def score(self) -> float:
        """Probability of the winning label."""
        return self.scores[self.label]

    def as_dict(self) -> dict:
        out = {"box": self.box.as_dict(), "label": self.label, "score": self.score,
               "scores": dict(self.scores), "assumed": self.assumed}
        if self.track_id is not None:
            out["track_id"] = self.track_id
        return out
