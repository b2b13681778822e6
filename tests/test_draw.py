from __future__ import annotations

import numpy as np
import pytest

from emotiscope.draw import PALETTE, _caption, annotate, label_colour
from emotiscope.types import Box, FaceEmotion

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def _face(x, y, w, h, label="happy", track_id=None) -> FaceEmotion:
    scores = {name: 0.0 for name in LABELS}
    scores[label] = 0.87
    scores["neutral" if label != "neutral" else "sad"] = 0.13
    return FaceEmotion(Box(x, y, w, h, 0.9), label, scores, track_id)


def test_annotate_returns_a_new_image_and_leaves_the_input_alone():
    image = np.full((480, 640, 3), 40, np.uint8)
    before = image.copy()
    out = annotate(image, [_face(200, 150, 120, 140)], labels=LABELS)
    assert np.array_equal(image, before)
    assert out.shape == image.shape and out.dtype == np.uint8 and out is not image
    colour = np.array(label_colour("happy", LABELS))
    assert (out[220, 200] == colour).all()  # on the box's left edge
    assert (out[220, 260] == 40).all()  # inside the box: untouched


def test_caption_sits_above_the_box_with_the_label_colour():
    out = annotate(np.zeros((480, 640, 3), np.uint8), [_face(200, 150, 120, 140)], labels=LABELS)
    above = out[100:148, 200:330]
    assert (above == np.array(label_colour("happy", LABELS))).all(axis=2).sum() > 500


def test_no_faces_gives_an_unchanged_copy():
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    out = annotate(image, [])
    assert np.array_equal(out, image) and out is not image


def test_small_images_are_enlarged_so_labels_stay_legible():
    out = annotate(np.zeros((48, 48, 3), np.uint8), [_face(0, 0, 48, 48)])
    assert out.shape == (240, 240, 3)
    assert annotate(np.zeros((48, 48, 3), np.uint8), [], min_side=0).shape == (48, 48, 3)


@pytest.mark.parametrize("box", [(0, 0, 50, 50), (590, 430, 50, 50), (-20, -20, 100, 100),
                                 (600, 450, 100, 100)])
def test_boxes_at_or_past_the_edges_draw_without_error(box):
    out = annotate(np.zeros((480, 640, 3), np.uint8), [_face(*box)])
    assert out.shape == (480, 640, 3) and out.any()


def test_grey_input_gives_rgb_output():
    assert annotate(np.zeros((400, 400), np.uint8), [_face(10, 10, 100, 100)]).shape == (400, 400, 3)


def test_one_colour_per_label_in_model_order():
    colours = [label_colour(name, LABELS) for name in LABELS]
    assert len(set(colours)) == len(LABELS)
    assert colours[0] == PALETTE[0]
    assert label_colour("curious") == label_colour("curious")  # unknown labels: stable hash


def test_caption_has_percent_and_track_id():
    assert _caption(_face(0, 0, 10, 10)) == "happy 87%"
    assert _caption(_face(0, 0, 10, 10, track_id=3)) == "happy 87% #3"


def test_thin_strips_are_not_enlarged_past_the_cap():
    from emotiscope.draw import MAX_ENLARGED_SIDE

    strip = np.zeros((3, 100_000, 3), np.uint8)  # enlarging to a 240 px short side: 5.7 GB
    out = annotate(strip, [_face(10, 0, 3, 3)], labels=LABELS)
    assert out.shape == strip.shape
    wide = annotate(np.zeros((100, 1500, 3), np.uint8), [], labels=LABELS)
    assert wide.shape == (137, MAX_ENLARGED_SIDE, 3)  # enlarged only up to the cap
    small = annotate(np.zeros((100, 300, 3), np.uint8), [], labels=LABELS)
    assert small.shape == (240, 720, 3)  # small pictures still grow for readable labels
