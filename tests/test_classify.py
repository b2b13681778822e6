"""classify.py: ONNX Runtime classifier on tiny random-weight models (tests/fixtures/tiny_model.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.tiny_model import FER_LABELS, make_nan_model, make_pooled_model, make_tiny_model

from emotiscope.classify import EmotionClassifier, softmax
from emotiscope.errors import ModelError
from emotiscope.model_file import file_sha256
from emotiscope.preprocess import InputSpec, prepare_crops

THREE = ("calm", "happy", "sad")


@pytest.fixture(scope="module")
def classifier(tiny_model_path) -> EmotionClassifier:
    return EmotionClassifier(tiny_model_path, threads=1)


def faces(n: int = 4, size: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def asymmetric_face(size: int = 48) -> np.ndarray:
    face = np.zeros((size, size), np.uint8)
    face[:, : size // 3] = 255  # bright left third only
    face[: size // 4] = 60
    return face


def test_labels_spec_and_checksum_come_from_the_file(classifier, tiny_model_path):
    assert classifier.labels == FER_LABELS
    info = classifier.info
    assert info.path == tiny_model_path and info.sha256 == file_sha256(tiny_model_path)
    assert info.spec == InputSpec(48, 1, 0.5, 0.25, 0.1)
    assert info.metadata["arch"] == "tiny-test"


def test_a_three_label_model(tmp_path):
    path = make_tiny_model(tmp_path / "three.onnx", labels=THREE, margin=0.3, size=32)
    clf = EmotionClassifier(str(path), threads=1)
    assert clf.labels == THREE
    assert clf.info.spec == InputSpec(32, 1, 0.5, 0.25, 0.3)
    probs = clf.predict_crops(list(faces(5, size=60)))
    assert probs.shape == (5, 3)


def test_probabilities_sum_to_one(classifier):
    probs = classifier.predict_crops(list(faces(6)))
    assert probs.shape == (6, len(FER_LABELS)) and probs.dtype == np.float32
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert len({tuple(np.round(p, 5)) for p in probs}) > 1  # different faces, different scores


def test_crops_of_any_size_and_colour(classifier):
    crops = [faces(1, 100)[0], np.dstack([faces(1, 70)[0]] * 3), faces(1, 48)[0]]
    probs = classifier.predict_crops(crops)
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs, classifier.predict_batch(prepare_crops(crops, classifier.info.spec)))


def test_empty_batches(classifier):
    assert classifier.predict_crops([]).shape == (0, 7)
    assert classifier.predict_batch(np.zeros((0, 1, 48, 48), np.float32), flip_tta=True).shape == (0, 7)


def test_flip_tta_is_the_mean_of_the_face_and_its_mirror(classifier):
    face = asymmetric_face()
    plain = classifier.predict_crops([face])
    mirror = classifier.predict_crops([face[:, ::-1]])
    both = classifier.predict_crops([face], flip_tta=True)
    assert np.abs(plain - mirror).max() > 1e-3  # the random model is not mirror-symmetric
    np.testing.assert_allclose(both, (plain + mirror) / 2, atol=1e-6)
    np.testing.assert_allclose(both.sum(1), 1.0, atol=1e-5)


def test_flip_tta_leaves_symmetric_faces_alone(classifier):
    face = asymmetric_face()
    symmetric = np.maximum(face, face[:, ::-1])
    np.testing.assert_allclose(classifier.predict_crops([symmetric], flip_tta=True),
                               classifier.predict_crops([symmetric]), atol=1e-6)


def test_softmax_is_stable_for_large_logits():
    probs = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-12)


@pytest.mark.parametrize("content", [
    np.random.default_rng(1).bytes(4096),
    b"",
    b"labels: happy, sad\nthis is a text file, not a model\n",
])
def test_corrupt_model_files_are_one_line_model_errors(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="not a valid ONNX model") as err:
        EmotionClassifier(bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "emotiscope export" in message


def test_output_width_must_match_the_labels(tmp_path):
    meta = {"labels": list(THREE), "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25}}
    path = make_tiny_model(tmp_path / "wide.onnx", labels=FER_LABELS, metadata=meta)  # 7 outputs
    with pytest.raises(ModelError, match="outputs 7 scores but lists 3 labels"):
        EmotionClassifier(path)


def test_model_without_metadata(tmp_path):
    import onnx

    path = make_tiny_model(tmp_path / "plain.onnx")
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="no 'emotiscope' metadata"):
        EmotionClassifier(path)


def test_checksum_sidecar_is_checked_on_load(tmp_path):
    path = make_tiny_model(tmp_path / "m.onnx")
    sidecar = tmp_path / "m.onnx.sha256"
    sidecar.write_text(f"{file_sha256(path)}  m.onnx\n")
    assert EmotionClassifier(path).info.sha256 == file_sha256(path)
    sidecar.write_text("f" * 64)
    with pytest.raises(ModelError, match="fails its checksum"):
        EmotionClassifier(path)


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        EmotionClassifier(tmp_path / "nosuch.onnx")


def test_metadata_is_kept_whole(tmp_path):
    meta = {"labels": list(THREE), "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25},
            "metrics": {"validation": {"accuracy": 0.5}}, "anything": [1, 2]}
    clf = EmotionClassifier(make_tiny_model(tmp_path / "m.onnx", labels=THREE, metadata=meta))
    assert json.loads(json.dumps(clf.info.metadata)) == meta


# --- the graph must agree with its metadata (crafted tiny models) --------------------------------

@pytest.mark.parametrize("shape, n_out, fragment", [
    (["N", 3, 64, 64], 7, "takes a Nx3x64x64 float input but its metadata says Nx1x48x48 float"),
    (["N", 1, 64, 64], 7, "takes a Nx1x64x64"),
    ([1, 1, 48, 48], 7, "has a fixed batch size of 1"),
    (["N", 1, 48, 48], 5, "outputs 5 scores but lists 7 labels"),
    (["N", 48, 48], 7, "takes a Nx48x48"),
])
def test_a_graph_that_disagrees_with_its_metadata_is_refused_on_load(tmp_path, shape, n_out,
                                                                     fragment):
    path = make_pooled_model(tmp_path / "bad.onnx", shape, n_out)
    with pytest.raises(ModelError, match=fragment) as err:
        EmotionClassifier(path, threads=1)
    assert "\n" not in str(err.value) and "emotiscope export" in str(err.value)


@pytest.mark.parametrize("change, fragment", [
    ({"size": 100000}, "size 8-512"),
    ({"size": 4}, "size 8-512"),
    ({"margin": 50.0}, "margin 0-2.0"),
    ({"margin": -1.0}, "margin 0-2.0"),
    ({"std": float("inf")}, "std > 0"),
])
def test_absurd_input_sizes_and_margins_are_refused(tmp_path, change, fragment):
    meta = {"labels": list(FER_LABELS),
            "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25, **change}}
    path = make_tiny_model(tmp_path / "absurd.onnx", metadata=meta)
    with pytest.raises(ModelError, match=fragment):
        EmotionClassifier(path, threads=1)


def test_the_bounds_keep_the_models_we_make(tmp_path):
    meta = {"labels": list(FER_LABELS),
            "input": {"size": 512, "channels": 3, "mean": 0.5, "std": 0.25, "margin": 2.0}}
    assert EmotionClassifier(make_pooled_model(tmp_path / "big.onnx", ["N", 3, 512, 512], meta=meta),
                             threads=1).info.spec.size == 512


def test_nan_scores_are_a_model_error_not_a_result(tmp_path):
    clf = EmotionClassifier(make_nan_model(tmp_path / "nan.onnx"), threads=1)
    with pytest.raises(ModelError, match="returned NaN or infinite scores") as err:
        clf.predict_crops(list(faces(2)))
    assert "\n" not in str(err.value)
