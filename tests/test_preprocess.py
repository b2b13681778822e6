"""preprocess.py: the input contract, colour conversion, cropping with margin, resizing, batching."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest

from emotiscope.errors import ModelError
from emotiscope.preprocess import (
    ALIGN_MIN_ROLL,
    InputSpec,
    batch_input,
    face_crop,
    normalize,
    prepare_crops,
    prepare_faces,
    resize_face,
    square_crop,
    to_channels,
)
from emotiscope.types import Box

SPEC = InputSpec(size=48, channels=1, mean=0.5, std=0.25, margin=0.1)
RED, GREEN = (255, 0, 0), (0, 255, 0)  # RGB


def ramp(h: int = 100, w: int = 120, channels: int = 0) -> np.ndarray:
    """uint8 image whose pixels differ along both axes (and across channels), so crops can be traced."""
    y, x = np.mgrid[0:h, 0:w]
    grey = ((y * 7 + x * 13) % 251).astype(np.uint8)
    if not channels:
        return grey
    return np.stack([(grey.astype(int) + 40 * c) % 256 for c in range(channels)], -1).astype(np.uint8)


def uniform(h: int, w: int, colour) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8) + np.array(colour, np.uint8)


# --- InputSpec -----------------------------------------------------------------------------------

def test_input_spec_round_trip():
    spec = InputSpec(size=64, channels=3, mean=0.4, std=0.2, margin=0.25)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert InputSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.to_dict() == {"size": 64, "channels": 3, "mean": 0.4, "std": 0.2, "margin": 0.25}


def test_input_spec_accepts_strings_and_defaults_margin_to_zero():
    spec = InputSpec.from_dict({"size": "48", "channels": 1, "mean": "0.5", "std": 0.25})
    assert spec == InputSpec(48, 1, 0.5, 0.25, 0.0)


@pytest.mark.parametrize("data, fragment", [
    ({"channels": 1, "mean": 0.5, "std": 0.25}, "is invalid"),               # no size
    ({"size": "big", "channels": 1, "mean": 0.5, "std": 0.25}, "is invalid"),
    ({"size": None, "channels": 1, "mean": 0.5, "std": 0.25}, "is invalid"),
    ({"size": 48, "channels": 2, "mean": 0.5, "std": 0.25}, "unsupported"),
    ({"size": 4, "channels": 1, "mean": 0.5, "std": 0.25}, "unsupported"),
    ({"size": 48, "channels": 1, "mean": 0.5, "std": 0.0}, "unsupported"),
])
def test_input_spec_from_dict_errors(data, fragment):
    with pytest.raises(ModelError, match=fragment) as err:
        InputSpec.from_dict(data)
    assert "\n" not in str(err.value)


# --- normalize, to_channels ----------------------------------------------------------------------

def test_normalize_numpy():
    out = normalize(np.array([0, 127.5, 255], np.float32), 0.5, 0.25)
    np.testing.assert_allclose(out, [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(normalize(np.array([51]), 0.0, 1.0), [0.2])


def test_normalize_torch_tensor_matches_numpy():
    torch = pytest.importorskip("torch")
    pixels = np.arange(0, 256, 17, dtype=np.float32)
    np.testing.assert_allclose(normalize(torch.from_numpy(pixels), 0.4, 0.3).numpy(),
                               normalize(pixels, 0.4, 0.3), rtol=1e-6)


def test_preprocess_does_not_import_torch(tmp_path):
    code = ("import json, sys, numpy as np; from emotiscope.preprocess import normalize, prepare_crops; "
            "normalize(np.zeros(3), 0.5, 0.25); print(json.dumps('torch' in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is False


def test_to_channels_grey():
    grey = ramp(20, 30)
    assert to_channels(grey, 1) is grey
    rgb = to_channels(grey, 3)
    assert rgb.shape == (20, 30, 3) and all((rgb[..., c] == grey).all() for c in range(3))
    column = grey[:, :, None]  # HxWx1
    assert to_channels(column, 1).shape == (20, 30)
    np.testing.assert_array_equal(to_channels(column, 1), grey)
    np.testing.assert_array_equal(to_channels(column, 3)[..., 2], grey)


def test_to_channels_rgb_and_rgba():
    rgb = ramp(20, 30, 3)
    assert to_channels(rgb, 3) is rgb
    # ITU-R BT.601 luma (OpenCV's RGB2GRAY): pure red 76, pure green 150.
    assert to_channels(uniform(2, 2, RED), 1)[0, 0] == 76
    assert to_channels(uniform(2, 2, GREEN), 1)[0, 0] == 150
    rgba = np.dstack([rgb, np.full((20, 30), 7, np.uint8)])
    np.testing.assert_array_equal(to_channels(rgba, 3), rgb)  # alpha dropped, colours kept
    np.testing.assert_array_equal(to_channels(rgba, 1), to_channels(rgb, 1))


# --- square_crop, face_crop ----------------------------------------------------------------------

# (box, margin, (x0, y0, side)) worked out by hand: side = max(w, h) * (1 + 2 * margin), centred.
CROPS = [
    (Box(20, 30, 20, 10), 0.0, (20, 25, 20)),      # inside; square from the longer side
    (Box(40, 40, 40, 20), 0.25, (30, 20, 60)),     # inside, with margin
    (Box(0, 0, 20, 20), 0.5, (-10, -10, 40)),      # touches the top-left corner
    (Box(100, 85, 30, 30), 0.0, (100, 85, 30)),    # partly outside bottom-right (image 120x100)
    (Box(-10, -5, 30, 20), 0.0, (-10, -10, 30)),   # partly outside top-left
]


@pytest.mark.parametrize("channels", [0, 3])
@pytest.mark.parametrize("box, margin, expected", CROPS)
def test_square_crop_centred_with_margin_and_edge_replication(box, margin, expected, channels):
    image = ramp(100, 120, channels)
    x0, y0, side = expected
    pad = 50
    widths = ((pad, pad), (pad, pad)) + (((0, 0),) if channels else ())
    padded = np.pad(image, widths, mode="edge")  # replicated borders, as the crop should have
    crop = square_crop(image, box, margin)
    assert crop.shape[:2] == (side, side) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side])


def test_square_crop_replicates_the_border_pixels():
    image = ramp(100, 120)
    crop = square_crop(image, Box(0, 40, 20, 20), 0.5)  # 10 px beyond the left edge
    assert crop.shape == (40, 40)
    np.testing.assert_array_equal(crop[:, :10], np.repeat(crop[:, 10:11], 10, axis=1))
    np.testing.assert_array_equal(crop[:, 10], image[30:70, 0])


def test_square_crop_turns_a_tilted_face_upright():
    image = np.zeros((100, 120), np.uint8)
    # an "eye line" through (60, 50), falling 30 degrees to the right: clockwise, roll +30
    dx, dy = 30 * math.cos(math.radians(30)), 30 * math.sin(math.radians(30))
    cv2.line(image, (round(60 - dx), round(50 - dy)), (round(60 + dx), round(50 + dy)), 255, 1)
    box = Box(40, 30, 40, 40, roll=30.0)
    upright = square_crop(image, box, 0.0)
    rows, cols = np.nonzero(upright > 100)
    assert upright.shape == (40, 40) and cols.min() <= 8 and cols.max() >= 31  # across the crop
    assert rows.max() - rows.min() <= 2 and abs(rows.mean() - 20) <= 1.5  # level, centred
    tilted = square_crop(image, replace(box, roll=0.0), 0.0)
    assert np.ptp(np.nonzero(tilted > 100)[0]) >= 15  # as it lies, the line still falls
    below = replace(box, roll=ALIGN_MIN_ROLL - 1)  # a small tilt is left as it is
    np.testing.assert_array_equal(square_crop(image, below, 0.0), tilted)
    assert square_crop(ramp(100, 120, 3), box, 0.5).shape == (80, 80, 3)


def test_face_crop_uses_a_whole_image_box_as_it_is():
    image = ramp(60, 50, 3)
    assert face_crop(image, Box(0, 0, 50, 60), 0.3) is image  # no margin padding
    box = Box(5, 5, 20, 20)
    np.testing.assert_array_equal(face_crop(image, box, 0.3), square_crop(image, box, 0.3))
    assert face_crop(image, Box(0, 0, 50, 59), 0.3).shape == (94, 94, 3)  # 59 * 1.6, padded


# --- resize_face ---------------------------------------------------------------------------------

def test_resize_face_shrinks_with_area_averaging():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (144, 144), dtype=np.uint8)
    small = resize_face(big, 48)
    block_mean = big.reshape(48, 3, 48, 3).mean(axis=(1, 3))  # INTER_AREA at exactly 3x
    assert small.shape == (48, 48) and small.dtype == np.uint8
    assert np.abs(small - block_mean).max() <= 1.0
    assert np.abs(cv2.resize(big, (48, 48), interpolation=cv2.INTER_LINEAR) - block_mean).max() > 10


def test_resize_face_enlarges_and_keeps_the_right_size_untouched():
    face = ramp(24, 24)
    big = resize_face(face, 48)
    assert big.shape == (48, 48)
    np.testing.assert_array_equal(big, cv2.resize(face, (48, 48), interpolation=cv2.INTER_LINEAR))
    same = ramp(48, 48)
    np.testing.assert_array_equal(resize_face(same, 48), same)
    assert resize_face(ramp(30, 70), 48).shape == (48, 48)  # not square: stretched


def test_resize_face_colour_output():
    out = resize_face(uniform(64, 64, RED), 32, channels=3)
    assert out.shape == (32, 32, 3)
    assert (out == np.array(RED, np.uint8)).all()  # RGB order kept
    grey = resize_face(ramp(64, 64), 32, channels=3)
    assert grey.shape == (32, 32, 3) and (grey[..., 0] == grey[..., 2]).all()
    assert resize_face(uniform(64, 64, RED), 32, channels=1)[0, 0] == 76


def test_resize_face_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        resize_face(np.zeros((60, 60), np.float32), 48)


# --- batch_input, prepare_crops, prepare_faces ---------------------------------------------------

def test_batch_input_grey_shape_dtype_and_values():
    faces = [np.full((48, 48), 255, np.uint8), np.zeros((48, 48), np.uint8)]
    batch = batch_input(faces, SPEC)
    assert batch.shape == (2, 1, 48, 48) and batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(batch[0], 2.0)    # (1 - 0.5) / 0.25
    np.testing.assert_allclose(batch[1], -2.0)   # (0 - 0.5) / 0.25


def test_batch_input_colour_is_channels_first_rgb():
    spec = InputSpec(size=8, channels=3, mean=0.0, std=1.0)
    batch = batch_input([uniform(8, 8, RED), uniform(8, 8, GREEN)], spec)
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(batch[:, :, 0, 0], [[1, 0, 0], [0, 1, 0]])


def test_empty_inputs_give_empty_batches():
    assert batch_input([], SPEC).shape == (0, 1, 48, 48)
    assert batch_input([], InputSpec(size=32, channels=3)).shape == (0, 3, 32, 32)
    assert prepare_crops([], SPEC).shape == (0, 1, 48, 48)
    empty = prepare_faces(ramp(100, 100), [], SPEC)
    assert empty.shape == (0, 1, 48, 48) and empty.dtype == np.float32


def test_prepare_crops_any_size_and_colour():
    crops = [ramp(30, 40), ramp(100, 60, 3), np.dstack([ramp(50, 50, 3), ramp(50, 50)]),
             np.full((70, 70), 255, np.uint8)]
    batch = prepare_crops(iter(crops), SPEC)
    assert batch.shape == (4, 1, 48, 48) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[3], 2.0)
    colour = prepare_crops(crops, InputSpec(size=32, channels=3))
    assert colour.shape == (4, 3, 32, 32)


def test_prepare_faces_crops_each_box_with_the_margin():
    image = ramp(100, 120, 3)
    boxes = [Box(20, 30, 20, 10), Box(0, 0, 20, 20), Box(60, 50, 30, 40)]
    batch = prepare_faces(image, boxes, SPEC)
    assert batch.shape == (3, 1, 48, 48) and batch.dtype == np.float32
    one = prepare_faces(image, [boxes[2]], SPEC)[0]
    expected = batch_input([resize_face(square_crop(image, boxes[2], SPEC.margin), 48)], SPEC)[0]
    np.testing.assert_array_equal(batch[2], one)
    np.testing.assert_array_equal(one, expected)


def test_prepare_faces_uses_a_whole_image_crop_unpadded():
    face = ramp(48, 48)
    batch = prepare_faces(face, [Box(0, 0, 48, 48)], SPEC)
    np.testing.assert_array_equal(batch, batch_input([face], SPEC))
