from __future__ import annotations

import numpy as np
import pytest

from emotiscope.draw import PALETTE, _caption, annotate, label_colour, label_rects, place_labels
from emotiscope.errors import InputError
from emotiscope.images import load_image
from emotiscope.types import Box, FaceEmotion

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def _face(x, y, w, h, label="happy", track_id=None, assumed=False) -> FaceEmotion:
    scores = {name: 0.0 for name in LABELS}
    scores[label] = 0.87
    scores["neutral" if label != "neutral" else "sad"] = 0.13
    return FaceEmotion(Box(x, y, w, h, 0.9), label, scores, track_id, assumed)


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


@pytest.mark.parametrize("convert", [lambda a: a.astype(np.float32) / 255,
                                     lambda a: a.astype(np.uint16) * 257,
                                     lambda a: a[:, :, :1], lambda a: a > 100,
                                     lambda a: np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])],
                         ids=["float01", "uint16", "hw1", "bool", "rgba"])
def test_arrays_are_normalised_as_load_image_does(convert):
    image = np.full((480, 640, 3), 200, np.uint8)
    faces = [_face(200, 150, 120, 140)]
    given = convert(image)
    out = annotate(given, faces, labels=LABELS)
    assert np.array_equal(out, annotate(load_image(given), faces, labels=LABELS))
    assert out.shape == (480, 640, 3) and out.dtype == np.uint8
    assert (out[220, 260] == 255 if given.dtype == np.bool_ else out[220, 260] == 200).all()


def test_arrays_load_image_refuses_are_refused():
    with pytest.raises(InputError, match="the image to annotate has shape"):
        annotate(np.zeros((4, 4, 5), np.uint8), [])


def test_one_colour_per_label_in_model_order():
    colours = [label_colour(name, LABELS) for name in LABELS]
    assert len(set(colours)) == len(LABELS)
    assert colours[0] == PALETTE[0]
    assert label_colour("curious") == label_colour("curious")  # unknown labels: stable hash


def test_caption_has_number_percent_track_id_and_assumed():
    assert _caption(_face(0, 0, 10, 10), 2) == "2 happy 87%"
    assert _caption(_face(0, 0, 10, 10, track_id=3), 2) == "#3 happy 87%"
    assert _caption(_face(0, 0, 10, 10, assumed=True), 1) == "1 happy 87% (assumed)"


def _intersect(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _crowd(rows=4, cols=9, side=60, gap=12, x0=10, y0=30):
    return [_face(x0 + c * (side + gap) + (r % 2) * 20, y0 + r * (side + gap) + (c % 3) * 4, side,
                  side, LABELS[(r + c) % 7]) for r in range(rows) for c in range(cols)]


def test_labels_on_a_crowded_photo_do_not_overlap():
    faces = _crowd()  # 36 faces 60 px wide, 12 px apart: every label is wider than a face
    image = np.zeros((330, 680, 3), np.uint8)
    rects = label_rects(image.shape, faces)
    assert len(rects) == len(faces)
    for k, a in enumerate(rects):
        assert 0 <= a[0] < a[2] <= 680 and 0 <= a[1] < a[3] <= 330  # inside the image
        assert not any(_intersect(a, b) for b in rects[k + 1:])
    # ... and the drawing uses these places: each label rectangle is filled with its colour
    out = annotate(image, faces, labels=LABELS)
    for face, (x0, y0, _, _) in zip(faces, rects, strict=True):
        colour = np.array(label_colour(face.label, LABELS))
        assert (out[y0 + 1, x0 + 1] == colour).all()


def test_label_goes_above_else_below_else_inside():
    box, size, shape = (100, 100, 200, 200), (80, 20), (400, 400)
    assert place_labels([box], [size], shape) == [(100, 80, 180, 100)]  # above
    assert place_labels([(100, 5, 200, 200)], [size], shape) == [(100, 200, 180, 220)]  # below
    assert place_labels([(100, 5, 200, 395)], [size], shape) == [(100, 5, 180, 25)]  # inside
    # a second face whose place above is taken by the first label shifts away from it
    first, second = place_labels([box, (110, 105, 210, 205)], [size, size], shape)
    assert not _intersect(first, second)


def test_assumed_face_has_a_dashed_box():
    image = np.zeros((240, 240, 3), np.uint8)
    solid = annotate(image, [_face(40, 60, 160, 160)], labels=LABELS)
    dashed = annotate(image, [_face(40, 60, 160, 160, assumed=True)], labels=LABELS)
    edge = (slice(100, 200), 40)  # the left edge, below any label
    assert solid[edge].any(axis=1).all() and not dashed[edge].any(axis=1).all()
    assert dashed[edge].any()


@pytest.mark.parametrize("shape", [(48, 48), (240, 320), (1080, 1920), (6000, 8000)])
def test_label_text_is_legible_at_every_size(shape):
    rects = label_rects(shape, [_face(shape[1] // 4, shape[0] // 3, shape[1] // 4, shape[0] // 4)])
    height = rects[0][3] - rects[0][1]
    enlarged_short = max(min(shape), 240)
    assert 18 <= height <= 120  # text about 11 to 60 px high, plus padding
    assert height <= 0.1 * enlarged_short


def test_thin_strips_are_not_enlarged_past_the_cap():
    from emotiscope.draw import MAX_ENLARGED_SIDE

    strip = np.zeros((3, 100_000, 3), np.uint8)  # enlarging to a 240 px short side: 5.7 GB
    out = annotate(strip, [_face(10, 0, 3, 3)], labels=LABELS)
    assert out.shape == strip.shape
    wide = annotate(np.zeros((100, 1500, 3), np.uint8), [], labels=LABELS)
    assert wide.shape == (137, MAX_ENLARGED_SIDE, 3)  # enlarged only up to the cap
    small = annotate(np.zeros((100, 300, 3), np.uint8), [], labels=LABELS)
    assert small.shape == (240, 720, 3)  # small pictures still grow for readable labels


@pytest.mark.parametrize("faces, words", [
    (None, "got a NoneType"), (_face(1, 1, 5, 5), "got a FaceEmotion; for one face pass \\[face\\]"),
    ([Box(1, 1, 5, 5)], "got a list holding a Box"), (iter([_face(1, 1, 5, 5)]), "got a list_iterator"),
])
def test_faces_that_are_no_list_of_faceemotion_are_an_input_error(faces, words):
    """Not "'NoneType' object is not iterable" or "'Box' object has no attribute 'box'"."""
    with pytest.raises(InputError, match=words):
        annotate(np.zeros((50, 50, 3), np.uint8), faces)
