"""EmotionRecognizer: an image in, a list of FaceEmotion out (detect -> crop -> classify).

    >>> rec = EmotionRecognizer(detector="auto", min_face=20)
    >>> faces = rec("group.jpg")          # path, encoded bytes or RGB array
    >>> [(f.label, round(f.score, 2), f.box) for f in faces]

No face is an empty list. Boxes are in original-image pixels (see types.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

from .classify import EmotionClassifier
from .detect import FaceDetector, make_detector
from .io import DEFAULT_MAX_PIXELS, ImageSource, load_image
from .preprocess import prepare_faces
from .types import Box, FaceEmotion


class EmotionRecognizer:
    """Face detector + emotion classifier, configured once, used for many images.

    model: .onnx path (None: $EMOTISCOPE_MODEL, then the bundled model).
    detector: "auto", "yunet", "haar" or an object with detect(image) -> list[Box].
    min_face: smallest face side kept, in original pixels. threshold: detector confidence 0..1.
    max_side: longest side of the copy detection runs on (None: detect.DEFAULT_MAX_SIDE,
    0: full resolution). flip_tta: average with the mirrored face. threads: ONNX Runtime threads.
    max_pixels: larger images are refused before decoding.
    """

    def __init__(self, model: str | os.PathLike | None = None,
                 detector: str | FaceDetector = "auto", *, min_face: int = 20,
                 threshold: float = 0.6, max_side: int | None = None, flip_tta: bool = False,
                 threads: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        # The detector first: its options are checked before the slower model load.
        self.detector: FaceDetector = make_detector(detector, min_face=min_face,
                                                    threshold=threshold, max_side=max_side)
        self.classifier = EmotionClassifier(model, threads=threads)
        self.flip_tta = flip_tta
        self.max_pixels = max_pixels

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's labels, in its output order."""
        return self.classifier.labels

    def detect(self, image: np.ndarray) -> list[Box]:
        """RGB uint8 image -> face boxes, left to right."""
        return self.detector.detect(image)

    def classify(self, image: np.ndarray, boxes: Sequence[Box]) -> list[FaceEmotion]:
        """Classify every box of an RGB uint8 image, all faces in one batch."""
        if not boxes:
            return []
        batch = prepare_faces(image, boxes, self.classifier.info.spec)
        probs = self.classifier.predict_batch(batch, flip_tta=self.flip_tta)
        labels = self.labels
        return [FaceEmotion(box=box, label=labels[int(np.argmax(row))],
                            scores={label: float(p) for label, p in zip(labels, row, strict=True)})
                for box, row in zip(boxes, probs, strict=True)]

    def __call__(self, image: ImageSource) -> list[FaceEmotion]:
        """Path, encoded bytes or RGB array -> one FaceEmotion per face found."""
        rgb = load_image(image, max_pixels=self.max_pixels)
        return self.classify(rgb, self.detect(rgb))

    def stream(self, frames: Iterable[ImageSource]) -> Iterator[tuple[np.ndarray, list[FaceEmotion]]]:
        """For each frame (RGB array, path or bytes): (the RGB frame, its faces)."""
        for frame in frames:
            rgb = load_image(frame, max_pixels=self.max_pixels)
            yield rgb, self.classify(rgb, self.detect(rgb))


def analyze(image: ImageSource, **options) -> list[FaceEmotion]:
    """One call from image to emotions: `EmotionRecognizer(**options)(image)`.

    The recognizer is kept between calls with the same options, so a loop over many images
    loads the model once.
    """
    try:
        recognizer = _cached_recognizer(tuple(sorted(options.items())))
    except TypeError:  # an unhashable option value: build a fresh one
        recognizer = EmotionRecognizer(**options)
    return recognizer(image)


@lru_cache(maxsize=2)
def _cached_recognizer(options: tuple) -> EmotionRecognizer:
    return EmotionRecognizer(**dict(options))
