"""The work behind one request, run in a worker thread: bytes -> checked image -> faces.

Only bytes that arrived in the request body are ever decoded: the service never opens a
path or URL a client sends. Boxes are in pixels of the decoded image, top-left origin.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..draw import annotate as draw
from ..draw import label_colour
from ..errors import InputError
from ..io import declared_size, encode_image, image_format, load_image
from ..model_file import model_card as card
from ..workers import RecognizerPool
from .http_errors import ApiError

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


def ms_since(start: float) -> float:
    """Milliseconds since `start` (a time.perf_counter() value), rounded to 0.01."""
    return round((time.perf_counter() - start) * 1000.0, 2)


# A path inside text: a run of non-space characters with a / or \ in it ("--out=/a/b" -> "/a/b")
PATH = re.compile(r"[^\s=,;'\"]*[\\/][^\s=,;'\"]*")


def file_names_only(value):
    """`value` (JSON-like) with every path in its strings cut to its last part: the training
    machine's folders are nobody's business ("/home/ann/runs/t.onnx" -> "t.onnx")."""
    if isinstance(value, dict):
        return {key: file_names_only(item) for key, item in value.items()}
    if isinstance(value, list):
        return [file_names_only(item) for item in value]
    if isinstance(value, str):
        return PATH.sub(lambda m: re.split(r"[\\/]", m.group().rstrip("/\\"))[-1], value)
    return value


def model_card(recognizer) -> dict:
    """What GET /v1/model reports: the model file's contract and provenance, with file names
    but no paths (neither the server's nor the training machine's)."""
    info = recognizer.classifier.info
    detector = recognizer.detector
    public = card(info)
    for provenance in ("training", "metrics"):  # commands, configs, data folders
        public[provenance] = file_names_only(public[provenance])
    return {
        **public,
        "colours": {label: "#" + bytes(label_colour(label, info.labels)).hex()
                    for label in info.labels},
        "detector": getattr(detector, "name", type(detector).__name__),
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
    def recognizer(self):
        """One of the pool's recognizers: for what they share (labels, model card)."""
        return self.pool.first

    def check(self, data: bytes) -> str:
        """The image format; 415 for non-images, 413 for too many pixels (from the header)."""
        if not data:
            raise ApiError(422, "the request has no image: send the image bytes as the body "
                                "or as the multipart field 'file'")
        kind = image_format(data)
        if kind is None:
            raise ApiError(415, "not a supported image: send JPEG, PNG, WebP, BMP, TIFF, GIF "
                                "or PNM bytes")
        size = declared_size(data)
        if size is not None and size[0] * size[1] > self.max_pixels:
            raise ApiError(413, f"image is {size[0]}x{size[1]} pixels, over the "
                                f"{self.max_pixels / 1e6:g} megapixel limit: downscale it")
        return kind.lower()

    def decode(self, data: bytes) -> tuple[np.ndarray, str]:
        """RGB uint8 image and its format; 422 when it cannot be decoded."""
        kind = self.check(data)
        try:
            image = load_image(data, max_pixels=self.max_pixels)
        except InputError as exc:
            raise ApiError(422, f"corrupt or truncated {kind} image: it cannot be decoded "
                                "(re-save or re-export it)") from exc
        return image, kind

    def analyze(self, data: bytes, annotate: str | None = None) -> tuple[dict, bytes | None]:
        """JSON-ready result for one image, and the annotated image if `annotate` names a format."""
        start = time.perf_counter()
        image, kind = self.decode(data)
        timings = {"decode": ms_since(start)}
        with self.pool.use() as recognizer:
            t = time.perf_counter()
            boxes = recognizer.detect(image)
            timings["detect"] = ms_since(t)
            t = time.perf_counter()
            faces = recognizer.classify(image, boxes)
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
