"""EmotionRecognizer: an image in, a list of FaceEmotion out (detect -> crop -> classify).

    >>> rec = EmotionRecognizer(detector="auto", min_face=20)
    >>> faces = rec("group.jpg")          # path, encoded bytes or RGB array
    >>> [(f.label, round(f.score, 2), f.box) for f in faces]

No face is an empty list. Boxes are in original-image pixels (see types.py).

Face crops: an image that is already an aligned face crop (FER-2013 and CK+ style, 48x48) has
too little context for a detector. `assume_crop` says what happens when the detector finds
nothing: "never" -> no face; "always" -> the whole image is one face; "auto" (the default) ->
the whole image is one face only if it looks like such a crop (`looks_like_face_crop`). Such a
face is marked `FaceEmotion.assumed` and its box's score is 0.0 (no detector vouched for it).
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

from .classify import EmotionClassifier
from .detect import FaceDetector, make_detector
from .errors import ConfigError
from .images import ImageSource, load_image
from .options import RecognizerOptions
from .preprocess import prepare_crops, prepare_faces
from .types import Box, FaceEmotion

# What "auto" takes for an aligned face crop (measured in docs/DETECTION.md):
CROP_MAX_SIDE = 64  # FER-2013 and CK+ crops are 48x48; photos and thumbnails are larger
CROP_ASPECT = (0.8, 1.4)  # height / width: square, or portrait up to about 5:7
CROP_MIN_STD = 8.0  # grey levels: a flat image holds no face
CROP_MIN_CORRELATION = 0.5  # of neighbouring pixels: about 0 for noise, >= 0.74 for 99 % of FER
MAX_THREADS = 1024  # EmotionRecognizer(threads=...): beyond any CPU (and ONNX Runtime's int32)


def looks_like_face_crop(image: np.ndarray, min_face: int = 1) -> bool:
    """True for an image that could be an aligned face crop: both sides between `min_face` and
    CROP_MAX_SIDE pixels, about square, not flat (grey-level spread) and not noise (neighbouring
    pixels correlate, as in any photo; in noise they do not)."""
    height, width = image.shape[:2]
    if not crop_sized(width, height, min_face):
        return False
    grey = image.astype(np.float64)
    grey = grey.mean(axis=2) if grey.ndim == 3 else grey
    if grey.std() < CROP_MIN_STD:
        return False
    return min(_correlation(grey[:, :-1], grey[:, 1:]),
               _correlation(grey[:-1], grey[1:])) >= CROP_MIN_CORRELATION


def crop_sized(width: int, height: int, min_face: int = 1) -> bool:
    """looks_like_face_crop's test of the size alone: both sides between `min_face` and
    CROP_MAX_SIDE pixels, height / width within CROP_ASPECT."""
    low, high = CROP_ASPECT
    return (min_face <= min(width, height) and max(width, height) <= CROP_MAX_SIDE
            and low * width <= height <= high * width)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


class EmotionRecognizer:
    """Face detector + emotion classifier, configured once, used for many images.

    Its settings are a RecognizerOptions (options.py: model, detector, min_face, threshold,
    max_side, flip_tta, assume_crop, max_pixels), given whole, as keyword arguments, or both
    (the keywords change the given options):

        EmotionRecognizer(RecognizerOptions(detector="haar"))
        EmotionRecognizer("m.onnx", "haar", min_face=30)

    threads: ONNX Runtime threads (a resource, not a setting of the results; 0 or None: up to
    4, as the CPU has).
    """

    def __init__(self, model: str | os.PathLike | RecognizerOptions | None = None,
                 detector: str | FaceDetector | None = None, *,
                 options: RecognizerOptions | None = None, threads: int | None = None,
                 **settings) -> None:
        if threads is not None and (isinstance(threads, bool)
                                    or not isinstance(threads, numbers.Integral)
                                    or not 0 <= threads <= MAX_THREADS):
            raise ConfigError(f"threads must be a whole number from 0 to {MAX_THREADS} (0 or "
                              f"None: up to 4, as the CPU has), got {threads!r}")
        threads = None if threads is None else int(threads)  # numpy integers too
        if isinstance(model, RecognizerOptions):
            options, model = model, None
        given = {name: value for name, value in (("model", model), ("detector", detector))
                 if value is not None}
        self.options = (options or RecognizerOptions()).replace(**given, **settings)
        opts = self.options
        self.assume_crop, self.min_face = opts.assume_crop, opts.min_face
        self.max_pixels = opts.max_pixels
        # The detector first: its options are checked before the slower model load.
        self.detector: FaceDetector = make_detector(opts.detector, min_face=opts.min_face,
                                                    threshold=opts.threshold,
                                                    max_side=opts.max_side)
        self.classifier = EmotionClassifier(opts.model, threads=threads)
        # None: the model's own choice (its `tta` metadata)
        self.flip_tta = self.classifier.info.flip_tta if opts.flip_tta is None else opts.flip_tta

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's labels, in its output order."""
        return self.classifier.labels

    def detect(self, image: np.ndarray) -> list[Box]:
        """RGB uint8 image -> the boxes of the faces the detector found, left to right.

        This and the other methods that take an image array (assumed_box, locate, classify,
        faces) take any array `load_image` takes, converted as it converts them (grey, RGBA;
        uint16, bool, float 0..1 or 0..255); InputError for other arrays."""
        return self.detector.detect(self._rgb(image))

    def detect_photo(self, image: np.ndarray) -> list[Box]:
        """`detect`, plus a finer pass over a big photo where the first found faces near the
        detector's floor, or a probe where it found none (crowd.py: group photos); video
        frames take `detect`."""
        from .crowd import refine

        image = self._rgb(image)
        return refine(self.detector, image, self.detect(image))

    def may_assume(self, width: int, height: int) -> bool:
        """Whether `assumed_box` could take a width x height image for a face crop: False spares
        decoding pixels that the policy would not look at."""
        return self.assume_crop == "always" or (
            self.assume_crop == "auto" and crop_sized(width, height, self.min_face))

    def assumed_box(self, image: np.ndarray) -> Box | None:
        """For an image in which no face was detected: the whole image as one face box if the
        `assume_crop` policy takes it for a face crop (score 0.0: no detector vouched), else None."""
        image = self._rgb(image)
        if self.assume_crop == "never" or (
                self.assume_crop == "auto" and not looks_like_face_crop(image, self.min_face)):
            return None
        return Box(0, 0, image.shape[1], image.shape[0], score=0.0)

    def locate(self, image: np.ndarray, *, photo: bool = False) -> tuple[list[Box], bool]:
        """The detected boxes (`detect_photo`'s if `photo`), else [assumed_box] if there is
        one; and whether it was assumed."""
        image = self._rgb(image)
        boxes = self.detect_photo(image) if photo else self.detect(image)
        assumed = None if boxes else self.assumed_box(image)
        return ([assumed], True) if assumed else (boxes, False)

    def classify(self, image: np.ndarray, boxes: Sequence[Box], *,
                 assumed: bool = False) -> list[FaceEmotion]:
        """Classify every box of an RGB uint8 image, all faces in one batch. assumed: the one
        box is the whole image taken as a face crop, classified as it is (as in training)."""
        if not boxes:
            return []
        image, spec = self._rgb(image), self.classifier.info.spec
        batch = prepare_crops([image], spec) if assumed else prepare_faces(image, boxes, spec)
        probs = self.classifier.predict_batch(batch, flip_tta=self.flip_tta)
        labels = self.labels
        return [FaceEmotion(box=box, label=labels[int(np.argmax(row))],
                            scores={label: float(p) for label, p in zip(labels, row, strict=True)},
                            assumed=assumed)
                for box, row in zip(boxes, probs, strict=True)]

    def faces(self, image: np.ndarray, *, photo: bool = False) -> list[FaceEmotion]:
        """RGB uint8 image -> one FaceEmotion per face (detected, or assumed by the policy).
        photo: a still photo, given `detect_photo`'s finer pass where crowded (not a frame)."""
        image = self._rgb(image)
        boxes, assumed = self.locate(image, photo=photo)
        return self.classify(image, boxes, assumed=assumed)

    def _rgb(self, image: np.ndarray) -> np.ndarray:
        """The image as RGB uint8, as the recognizer reads it (an RGB uint8 array as it is)."""
        return load_image(image, max_pixels=self.max_pixels, name="image")

    def __call__(self, image: ImageSource) -> list[FaceEmotion]:
        """Path, encoded bytes or RGB array -> one FaceEmotion per face found."""
        return self.faces(load_image(image, max_pixels=self.max_pixels), photo=True)

    def stream(self, frames: Iterable[ImageSource]) -> Iterator[tuple[np.ndarray, list[FaceEmotion]]]:
        """For each frame (RGB array, path or bytes): (the RGB frame, its faces)."""
        for frame in frames:
            rgb = load_image(frame, max_pixels=self.max_pixels)
            yield rgb, self.faces(rgb)


_cache_lock = threading.Lock()


def analyze(image: ImageSource, **options) -> list[FaceEmotion]:
    """One call from image to emotions: `EmotionRecognizer(**options)(image)`.

    The recognizer is kept between calls with the same options, so a loop over many images
    loads the model once. Safe to call from several threads (they share that recognizer).
    """
    try:
        with _cache_lock:  # threads asking at once for a new one build it once
            recognizer = _cached_recognizer(tuple(sorted(options.items())))
    except TypeError:  # an unhashable option value: build a fresh one
        recognizer = EmotionRecognizer(**options)
    return recognizer(image)


@lru_cache(maxsize=2)
def _cached_recognizer(options: tuple) -> EmotionRecognizer:
    return EmotionRecognizer(**dict(options))
