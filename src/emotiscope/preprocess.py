"""Face crop -> model input. THE preprocessing, shared by training and inference.

Images are numpy uint8 arrays: HxW grey, HxWx3 RGB or HxWx4 RGBA (colour order RGB).
Model input is float32 NxCxSxS, normalised as (pixel / 255 - mean) / std.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .errors import ModelError
from .types import Box

# Bounds on a model's input contract, so that a crafted file cannot make every face a huge
# allocation: 512x512 is over 100 times the bundled model's 48x48 pixels, and a margin of 2
# already makes the crop five times the face box's side.
MIN_SIZE, MAX_SIZE, MAX_MARGIN = 8, 512, 2.0

# A face whose eye line is tilted by at least this many degrees is turned upright before it is
# classified (Box.roll, from the detector's landmarks). FER-2013's faces are upright but not
# eye-aligned: turning every face cost ~0.5-1.5 points on upright and slightly tilted faces, while
# faces tilted 20-30 degrees gained 1.4-4.7 points from this threshold
# (`python benchmarks/bench_align.py`, docs/DETECTION.md).
ALIGN_MIN_ROLL = 15.0


@dataclass(frozen=True)
class InputSpec:
    """The input contract a model was trained with (stored in its metadata).

    size: side of the square input in pixels; channels: 1 (grey) or 3 (RGB);
    mean/std: normalisation applied after scaling pixels to 0..1;
    margin: fraction of the face box's side added on every side before cropping.
    """

    size: int = 48
    channels: int = 1
    mean: float = 0.5
    std: float = 0.25
    margin: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        try:
            spec = cls(size=int(data["size"]), channels=int(data["channels"]),
                       mean=float(data["mean"]), std=float(data["std"]),
                       margin=float(data.get("margin", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model input spec {data!r} is invalid ({exc}); "
                             "re-export the model with `emotiscope export`") from exc
        if (spec.channels not in (1, 3) or not MIN_SIZE <= spec.size <= MAX_SIZE
                or not 0 < spec.std < math.inf or not math.isfinite(spec.mean)
                or not 0 <= spec.margin <= MAX_MARGIN):
            raise ModelError(f"model input spec {data!r} is unsupported: need channels 1 or 3, "
                             f"size {MIN_SIZE}-{MAX_SIZE}, a finite mean, std > 0 and margin "
                             f"0-{MAX_MARGIN}")
        return spec


def normalize(pixels, mean: float, std: float):
    """Scale uint8-range pixels to model input. Works on numpy arrays and torch tensors alike."""
    return (pixels / 255.0 - mean) / std


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert grey/RGB/RGBA uint8 to HxW grey (channels=1) or HxWx3 RGB (channels=3)."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1:
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def square_crop(image: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """Square crop centred on `box`, side max(w, h) * (1 + 2 * margin); edges replicated. A box
    whose roll is at least ALIGN_MIN_ROLL degrees is cropped turned upright (eyes level)."""
    side = max(2, int(round(max(box.w, box.h) * (1.0 + 2.0 * margin))))
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    if abs(box.roll) >= ALIGN_MIN_ROLL:
        turn = cv2.getRotationMatrix2D((cx, cy), box.roll, 1.0)  # about the box's centre
        turn[:, 2] += np.array([side / 2.0 - cx, side / 2.0 - cy])  # that centre to the crop's centre
        return cv2.warpAffine(image, turn, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    h, w = image.shape[:2]
    pad_l, pad_t = max(0, -x0), max(0, -y0)
    pad_r, pad_b = max(0, x0 + side - w), max(0, y0 + side - h)
    crop = image[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    if pad_l or pad_t or pad_r or pad_b:
        crop = cv2.copyMakeBorder(crop, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    return crop


def face_crop(image: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """The face a model sees: a box covering the whole image means the image is already a face
    crop, used as it is, as in training; otherwise square_crop."""
    height, width = image.shape[:2]
    if (box.x, box.y, box.w, box.h) == (0, 0, width, height):
        return image
    return square_crop(image, box, margin)


def resize_face(face: np.ndarray, size: int, channels: int = 1) -> np.ndarray:
    """Any-size grey/colour face -> uint8 size x size (x3) in the model's colour space."""
    face = to_channels(np.ascontiguousarray(face), channels)
    if face.dtype != np.uint8:
        raise ValueError(f"faces must be uint8, got {face.dtype}")
    if face.shape[:2] == (size, size):
        return face
    shrink = face.shape[0] > size or face.shape[1] > size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interp)


def batch_input(faces: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """uint8 faces already at spec.size -> float32 NxCxSxS normalised model input."""
    if not faces:
        return np.zeros((0, spec.channels, spec.size, spec.size), np.float32)
    arr = np.stack(faces).astype(np.float32)
    arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(normalize(arr, spec.mean, spec.std), dtype=np.float32)


def prepare_crops(crops: Iterable[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Face-only images (already cropped, any size or colour) -> model input batch."""
    return batch_input([resize_face(c, spec.size, spec.channels) for c in crops], spec)


def prepare_faces(image: np.ndarray, boxes: Sequence[Box], spec: InputSpec) -> np.ndarray:
    """Crop every box of an RGB/grey image with the model's margin -> model input batch."""
    return prepare_crops((face_crop(image, b, spec.margin) for b in boxes), spec)


def mirror(faces: np.ndarray) -> np.ndarray:
    """Faces flipped left to right, as a contiguous copy: the flip of test-time augmentation,
    for any layout whose last axis is the width (N x S x S uint8 or N x C x S x S float)."""
    return np.ascontiguousarray(faces[..., ::-1])
