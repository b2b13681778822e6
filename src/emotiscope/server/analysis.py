"""The work behind one request, run in a worker thread: bytes -> checked image -> faces.

Only bytes that arrived in the request body are ever decoded: the service never opens a
path or URL a client sends. Boxes are in pixels of the decoded image, top-left origin.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..crowd import refine
from ..draw import annotate as draw
from ..draw import label_colour
from ..errors import InputError, ModelError
from ..images import declared_size, encode_image, image_format, load_image
from ..model_file import file_names_only
from ..model_file import model_card as card
from ..types import Recognizer
from ..workers import RecognizerPool
from .http_errors import ApiError, first_line, input_status

log = logging.getLogger("emotiscope.server")
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


def ms_since(start: float) -> float:
    """Milliseconds since `start` (a time.perf_counter() value), rounded to 0.01."""
    return round((time.perf_counter() - start) * 1000.0, 2)


def model_card(recognizer: Recognizer) -> dict:
    """What GET /v1/model reports: the model file's contract and provenance, with file names
    but no paths (neither the server's nor the training machine's)."""
    info = recognizer.classifier.info
    detector = recognizer.detector
    public = card(info, paths=False)  # commands, configs, data folders: file names only
    return {
        **public,
        "colours": {label: "#" + bytes(label_colour(label, info.labels)).hex()
                    for label in info.labels},
        "detector": getattr(detector, "name", type(detector).__name__),
        # the smallest face side looked for, in the photo's pixels (None: not known)
        "min_face": getattr(recognizer, "min_face", getattr(detector, "min_face", None)),
        "emotiscope_version": __version__,
    }


@dataclass
class Analyzer:
    """Checks and analyses uploaded image bytes with a pool of recognizers.

    Each recognizer is used by one thread at a time (face detectors are not all thread-safe);
    with N of them, N requests are analysed at once, and decoding and encoding of other
    requests overlap with them.
    """

    pool: RecognizerPool
    max_pixels: int

    @property
    def recognizer(self) -> Recognizer:
        """One of the pool's recognizers: for what they share (labels, model card)."""
        return self.pool.first

    def decode(self, data: bytes) -> tuple[np.ndarray, str]:
        """RGB uint8 image and its format. Refusals keep the decoder's own reason: 413 for too
        many pixels (checked from the header first), 415 for formats and layouts emotiscope
        does not read, 422 for anything else (corrupt, truncated, a strip beyond 50:1)."""
        if not data:
            raise ApiError(422, "the request has no image: send the image bytes as the body "
                                "or as the multipart field 'file'")
        size = declared_size(data)
        if size is not None and size[0] * size[1] > self.max_pixels:
            raise ApiError(413, f"image is {size[0]}x{size[1]} pixels, over the "
                                f"{self.max_pixels / 1e6:g} megapixel limit: downscale it")
        try:
            image = load_image(data, max_pixels=self.max_pixels, name="the uploaded image")
        except InputError as exc:
            raise ApiError(input_status(exc), first_line(exc)) from exc
        return image, str(image_format(data)).lower()

    def analyze(self, data: bytes, annotate: str | None = None) -> tuple[dict, bytes | None]:
        """JSON-ready result for one image, and the annotated image if `annotate` names a format."""
        start = time.perf_counter()
        image, kind = self.decode(data)
        timings = {"decode": ms_since(start)}
        with self.pool.use() as recognizer:
            t = time.perf_counter()
            # EmotionRecognizer.detect_photo, spelled out: a Recognizer needs only detect()
            boxes = refine(recognizer.detector, image, recognizer.detect(image))  # group photos
            assumed = None if boxes else recognizer.assumed_box(image)
            boxes = [assumed] if assumed else boxes
            timings["detect"] = ms_since(t)
            t = time.perf_counter()
            try:
                faces = recognizer.classify(image, boxes, assumed=assumed is not None)
            except ModelError as exc:  # e.g. NaN scores: the model is broken, not the request
                log.error("model error: %s", first_line(exc))
                raise ApiError(500, "the server's model failed on this image: "
                                    + file_names_only(first_line(exc))) from None
            timings["classify"] = ms_since(t)
        picture = None
        if annotate:
            t = time.perf_counter()
            picture = encode_image(draw(image, faces, labels=self.recognizer.labels),
                                   ".jpg" if annotate == "jpeg" else ".png", quality=90)
            timings["annotate"] = ms_since(t)
        timings["total"] = ms_since(start)
        result = {"image": {"width": int(image.shape[1]), "height": int(image.shape[0]),
                            "format": kind},
                  "faces": [face.as_dict() for face in faces],
                  "labels": list(self.recognizer.labels), "timings_ms": timings}
        return result, picture
