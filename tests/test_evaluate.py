"""training/evaluate.py: metrics on hand-made predictions, TTA views, and evaluate() on a CSV split,
48x48 crop folders and class folders of photos. The tiny model has random weights, so these tests
check structure and consistency, not accuracy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.images import sample_faces
from fixtures.tiny_model import FER_LABELS

from emotiscope.classify import EmotionClassifier
from emotiscope.errors import ConfigError, DataError
from emotiscope.images import load_image, sample_image_path, save_image
from emotiscope.pipeline import EmotionRecognizer
from emotiscope.preprocess import batch_input
from emotiscope.training.data import FaceSet, load_csv
from emotiscope.training.evaluate import (
    classification_report,
    evaluate,
    map_labels,
    pick_split,
    predict_faces,
    tta_views,
)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def classifier(tiny_model_path) -> EmotionClassifier:
    return EmotionClassifier(tiny_model_path, threads=1)


def random_faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def faceset(classes, labels) -> FaceSet:
    labels = np.array(labels, np.int64)
    return FaceSet(np.zeros((len(labels), 48, 48), np.uint8), labels, tuple(classes))


# --- classification_report -----------------------------------------------------------------------

def test_report_on_hand_made_predictions():
    # a: 3 of 4 right (one called b); b: 2 of 2; c: 1 of 2 (one called a); d: never seen.
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 2, 0]
    report = classification_report(y_true, y_pred, ("a", "b", "c", "d"))
    assert report["confusion"] == [[3, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert report["n"] == 8 and report["accuracy"] == 0.75
    assert report["labels"] == ["a", "b", "c", "d"]
    # precision = right / predicted as the class, recall = right / truly the class
    expected = {"a": (3 / 4, 3 / 4, 0.75, 4), "b": (2 / 3, 1.0, 0.8, 2),
                "c": (1.0, 1 / 2, 2 / 3, 2), "d": (0.0, 0.0, 0.0, 0)}
    for name, (p, r, f1, support) in expected.items():
        got = report["per_class"][name]
        assert got["precision"] == pytest.approx(p, abs=1e-4)
        assert got["recall"] == pytest.approx(r, abs=1e-4)
        assert got["f1"] == pytest.approx(f1, abs=1e-4)
        assert got["support"] == support
    # macro-F1 over classes present in the data (d has no support)
    assert report["macro_f1"] == pytest.approx((0.75 + 0.8 + 2 / 3) / 3, abs=1e-4)
    json.dumps(report)


def test_report_with_no_face_predictions():
    # -1 = no face found: wrong, and counted in an extra "(no face)" column.
    report = classification_report([0, 0, 1, 1, 1], [0, -1, 1, -1, 0], ("a", "b"))
    assert report["labels"] == ["a", "b", "(no face)"]
    assert report["confusion"] == [[1, 0, 1], [1, 1, 1]]
    assert report["accuracy"] == 0.4 and report["n"] == 5
    a, b = report["per_class"]["a"], report["per_class"]["b"]
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (0.5, 0.5, 0.5, 2)
    assert (b["precision"], b["recall"], b["support"]) == (1.0, 0.3333, 3)
    assert b["f1"] == pytest.approx(0.5, abs=1e-4)
    assert report["macro_f1"] == pytest.approx(0.5, abs=1e-4)


def test_report_perfect_and_empty():
    perfect = classification_report([2, 0, 1, 1], [2, 0, 1, 1], ("x", "y", "z"))
    assert perfect["accuracy"] == 1.0 and perfect["macro_f1"] == 1.0
    assert perfect["confusion"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    empty = classification_report([], [], ("x", "y"))
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and empty["macro_f1"] == 0.0
    assert empty["confusion"] == [[0, 0], [0, 0]]


# --- tta_views, predict_faces --------------------------------------------------------------------

@pytest.mark.parametrize("mode, count", [("none", 1), ("flip", 2), ("multicrop", 10)])
def test_tta_view_counts(mode, count):
    faces = random_faces(3)
    views = tta_views(faces, mode)
    assert len(views) == count
    for v in views:
        assert v.shape == faces.shape and v.dtype == np.uint8 and v.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(views[0], faces)


def test_flip_view_is_the_mirror_image():
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, :, :10] = 255  # bright band on the left
    mirror = tta_views(face, "flip")[1]
    assert (mirror[0, :, -10:] == 255).all() and (mirror[0, :, :-10] == 0).all()
    faces = random_faces(2)
    np.testing.assert_array_equal(tta_views(faces, "flip")[1], faces[:, :, ::-1])


def test_multicrop_views_are_shifts_of_the_face_and_its_mirror():
    faces, s = random_faces(2), 3
    views = tta_views(faces, "multicrop", shift=s)
    np.testing.assert_array_equal(views[1], faces[:, :, ::-1])
    np.testing.assert_array_equal(views[2][:, s:, s:], faces[:, :-s, :-s])  # moved down-right
    np.testing.assert_array_equal(views[5][:, :-s, :-s], faces[:, s:, s:])  # moved up-left
    mirror = faces[:, :, ::-1]
    np.testing.assert_array_equal(views[6][:, s:, s:], mirror[:, :-s, :-s])
    np.testing.assert_array_equal(views[9][:, :-s, :-s], mirror[:, s:, s:])
    assert len({v.tobytes() for v in views}) == 10  # all different


def test_predict_faces_matches_the_classifier(classifier):
    faces = random_faces(7)
    spec = classifier.info.spec
    plain = predict_faces(classifier, faces)
    np.testing.assert_allclose(plain, classifier.predict_batch(batch_input(list(faces), spec)),
                               atol=1e-6)
    np.testing.assert_allclose(predict_faces(classifier, faces, "flip"),
                               classifier.predict_batch(batch_input(list(faces), spec), flip_tta=True),
                               atol=1e-6)
    np.testing.assert_allclose(predict_faces(classifier, faces, batch=3), plain, atol=1e-6)
    multi = predict_faces(classifier, faces, "multicrop")
    assert multi.shape == (7, 7) and np.abs(multi - plain).max() > 1e-4
    np.testing.assert_allclose(multi.sum(1), 1.0, atol=1e-5)
    assert predict_faces(classifier, np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


# --- pick_split, map_labels ----------------------------------------------------------------------

def test_pick_split_default_order_and_errors(tmp_path):
    fs = faceset(["a", "b"], [0, 1])
    assert pick_split({"train": fs, "val": fs, "test": fs}, None, tmp_path)[0] == "test"
    assert pick_split({"train": fs, "val": fs}, None, tmp_path)[0] == "val"
    assert pick_split({"all": fs}, None, tmp_path)[0] == "all"
    assert pick_split({"train": fs, "val": fs}, "train", tmp_path) == ("train", fs)
    with pytest.raises(ConfigError, match="--split 'test' not in .*; it has train, val"):
        pick_split({"train": fs, "val": fs}, "test", tmp_path)
    with pytest.raises(ConfigError, match="has only train; pass --split train"):
        pick_split({"train": fs}, None, tmp_path)


def test_map_labels_to_model_order():
    fs = faceset(["sad", "happy"], [0, 1, 1, 0])
    mapped = map_labels(fs, FER_LABELS)
    assert mapped.tolist() == [FER_LABELS.index(n) for n in ("sad", "happy", "happy", "sad")]


def test_map_labels_refuses_classes_the_model_lacks():
    fs = faceset(["happy", "bored", "sleepy"], [0, 1, 2])
    with pytest.raises(DataError, match="data classes bored, sleepy are not labels of the model"):
        map_labels(fs, FER_LABELS)


# --- evaluate(): CSV split -----------------------------------------------------------------------

def check_consistent(report: dict, n: int) -> None:
    cm = np.array(report["confusion"])
    assert report["n"] == n == cm.sum()
    assert report["accuracy"] == pytest.approx(np.trace(cm) / n, abs=1e-4)
    assert [m["support"] for m in report["per_class"].values()] == cm.sum(1).tolist()
    assert 0 <= report["macro_f1"] <= 1
    json.dumps(report)


def test_evaluate_csv_defaults_to_val(tiny_model_path, sample_csv, classifier):
    report = evaluate(tiny_model_path, sample_csv)
    assert report["split"] == "val" and report["faces"] == "crops" and report["tta"] == "none"
    assert report["model"] == str(tiny_model_path) and report["model_sha256"] == classifier.info.sha256
    assert report["labels"] == list(FER_LABELS) and report["skipped"] == []
    check_consistent(report, 175)
    assert all(m["support"] == 25 for m in report["per_class"].values())
    val = load_csv(sample_csv)["val"]
    pred = predict_faces(classifier, val.images).argmax(1)
    assert report["accuracy"] == pytest.approx(np.mean(pred == map_labels(val, FER_LABELS)), abs=1e-4)


def test_evaluate_csv_other_split_and_tta(tiny_model_path, sample_csv):
    report = evaluate(tiny_model_path, sample_csv, split="train", tta="flip")
    assert report["split"] == "train" and report["tta"] == "flip"
    check_consistent(report, 175)
    with pytest.raises(ConfigError, match="--split 'test'"):
        evaluate(tiny_model_path, sample_csv, split="test")


def test_prediction_names_are_the_csv_lines_with_or_without_classes(tiny_model_path, sample_csv):
    from emotiscope.training.fercsv import FER_CSV_NAMES

    lines = sample_csv.read_text().splitlines()
    named = {}
    for classes in (None, ["sad", "happy"]):
        details: dict = {}
        evaluate(tiny_model_path, sample_csv, classes=classes, details=details)
        for name, true, probs in zip(details["names"], details["y_true"], details["probs"],
                                     strict=True):
            emotion, _, usage = lines[int(name.removeprefix("row ")) - 1].split(",")  # line N
            assert usage == "PublicTest" and FER_CSV_NAMES[int(emotion)] == FER_LABELS[true]
            named.setdefault(name, []).append(probs)
    both = [p for p in named.values() if len(p) == 2]
    assert len(named) == 175 and len(both) == 50  # the same face under the same name
    assert all(np.allclose(a, b) for a, b in both)


# --- evaluate(): folders of 48x48 crops ----------------------------------------------------------

def write_crops(root: Path, per_class: dict[str, int]) -> dict[str, list[np.ndarray]]:
    written, seed = {}, 0
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        written[cls] = []
        for i in range(n):
            seed += 1
            face = random_faces(1, seed)[0]
            assert cv2.imwrite(str(root / cls / f"{i}.png"), face)
            written[cls].append(face)
    return written


def test_evaluate_crop_folder(tiny_model_path, tmp_path, classifier):
    written = write_crops(tmp_path / "crops", {"happy": 3, "sad": 2})
    report = evaluate(tiny_model_path, tmp_path / "crops")
    assert report["split"] == "all" and report["faces"] == "crops"
    check_consistent(report, 5)
    expected = np.zeros((7, 7), int)
    for cls, faces in written.items():
        for p in classifier.predict_crops(faces):
            expected[FER_LABELS.index(cls), int(p.argmax())] += 1
    assert report["confusion"] == expected.tolist()
    assert report["per_class"]["happy"]["support"] == 3 and report["per_class"]["angry"]["support"] == 0


def test_evaluate_folder_with_a_class_the_model_lacks(tiny_model_path, tmp_path):
    write_crops(tmp_path / "crops", {"happy": 1, "bored": 1})
    with pytest.raises(DataError, match="bored"):
        evaluate(tiny_model_path, tmp_path / "crops")


def test_evaluate_a_split_without_a_class_the_classes_leave_out(tiny_model_path, tmp_path):
    write_crops(tmp_path / "crops/train", {"disgust": 1, "happy": 2, "sad": 2})
    write_crops(tmp_path / "crops/val", {"happy": 2, "sad": 1})  # no disgust/
    report = evaluate(tiny_model_path, tmp_path / "crops", split="val", classes=["happy", "sad"])
    assert report["n"] == 3 and report["per_class"]["happy"]["support"] == 2


# --- evaluate(): class folders of photos ---------------------------------------------------------

def paste(face_panel: np.ndarray, canvas_hw: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    canvas = np.full((*canvas_hw, 3), 128, np.uint8)
    y, x = at
    canvas[y:y + face_panel.shape[0], x:x + face_panel.shape[1]] = face_panel
    return canvas


@pytest.fixture
def photo_folders(tmp_path) -> tuple[Path, Path]:
    """happy/: two photos each with one real face (from the sample photo); sad/: one face photo
    and one blank photo with no face."""
    sample = load_image(sample_image_path())
    faces = sample_faces()
    crop = lambda b, m: sample[max(0, b.y - m):b.y + b.h + m, max(0, b.x - m):b.x + b.w + m]  # noqa: E731
    root = tmp_path / "photos"
    save_image(root / "happy" / "hopper.png", paste(crop(faces[0], 40), (420, 560), (60, 200)))
    save_image(root / "happy" / "collins.png", paste(crop(faces[1], 40), (400, 640), (150, 30)))
    save_image(root / "sad" / "hopper_big.jpg",
               paste(cv2.resize(crop(faces[0], 30), None, fx=1.5, fy=1.5), (480, 640), (10, 300)))
    blank = np.dstack([np.tile(np.linspace(40, 220, 500, dtype=np.uint8), (300, 1))] * 3)
    save_image(root / "sad" / "blank.png", blank)
    return root, root / "sad" / "blank.png"


def test_evaluate_photo_folders(tiny_model_path, photo_folders):
    root, blank = photo_folders
    report = evaluate(tiny_model_path, root, detector="auto")
    assert report["faces"] == "detected" and report["split"] == "photos"
    assert report["no_face"] == [str(blank)]
    assert report["labels"] == [*FER_LABELS, "(no face)"]
    cm = np.array(report["confusion"])
    assert cm.shape == (7, 8) and cm.sum() == report["n"] == 4
    sad, happy = FER_LABELS.index("sad"), FER_LABELS.index("happy")
    assert cm[sad, -1] == 1 and cm[:, -1].sum() == 1  # the blank photo: counted, and wrong
    assert cm[happy].sum() == 2 and cm[sad].sum() == 2
    # Each found face is classified as the recognizer classifies the largest face of its photo.
    rec = EmotionRecognizer(model=tiny_model_path, detector="auto")
    expected = np.zeros_like(cm)
    for cls in ("happy", "sad"):
        for f in sorted((root / cls).iterdir()):
            found = rec(f)
            column = FER_LABELS.index(max(found, key=lambda r: r.box.area).label) if found else 7
            expected[FER_LABELS.index(cls), column] += 1
    assert cm.tolist() == expected.tolist()
    assert report["accuracy"] == pytest.approx(np.trace(cm[:, :7]) / 4, abs=1e-4)


def test_evaluate_photos_with_flip_and_forced_detection(tiny_model_path, photo_folders):
    root, blank = photo_folders
    report = evaluate(tiny_model_path, root, tta="flip", faces="detect", detector="haar")
    assert report["tta"] == "flip" and report["no_face"] == [str(blank)]
    assert np.array(report["confusion"]).sum() == 4


def test_a_corrupt_photo_is_skipped_counted_and_listed(tiny_model_path, photo_folders, capsys):
    root, _ = photo_folders
    corrupt = root / "happy" / "corrupt.jpg"
    corrupt.write_bytes((root / "sad" / "hopper_big.jpg").read_bytes()[:2000])
    (root / "sad" / "empty.png").write_bytes(b"")
    report = evaluate(tiny_model_path, root, detector="haar")
    assert report["skipped"] == [str(corrupt), str(root / "sad" / "empty.png")]
    assert report["n"] == 4  # the readable photos only
    from emotiscope.commands.evaluate import print_summary

    print_summary(report)
    out = capsys.readouterr().out
    assert "2 unreadable image(s) skipped (not counted):" in out and str(corrupt) in out


def test_photo_folders_with_names_that_are_not_utf8(tiny_model_path, photo_folders):
    root, _ = photo_folders
    os.rename(os.fsencode(root / "sad" / "blank.png"), os.fsencode(root / "sad") + b"/bl\xe9nk.png")
    report = evaluate(tiny_model_path, root, detector="haar")  # auto: reads the image sizes
    assert report["faces"] == "detected" and report["n"] == 4
    assert report["no_face"] == [str(root / "sad" / "bl\\xe9nk.png")]
    json.dumps(report, ensure_ascii=False).encode("utf-8")  # printable as is


def test_photos_in_a_split_layout_are_evaluated_on_one_split(tiny_model_path, photo_folders):
    import shutil

    root, _ = photo_folders
    layout = root.parent / "layout"
    shutil.copytree(root / "happy", layout / "train" / "happy")  # 2 photos, 2 faces
    shutil.copytree(root / "sad", layout / "train" / "sad")  # 2 photos, 1 face
    shutil.copytree(root / "happy", layout / "Val" / "happy")  # 2 photos
    val = evaluate(tiny_model_path, layout, detector="haar")  # no --split: val, never train
    assert val["split"] == "val" and val["n"] == 2 and val["no_face"] == []
    assert list(val["per_class"]) == list(FER_LABELS) and val["per_class"]["sad"]["support"] == 0
    train = evaluate(tiny_model_path, layout, split="train", detector="haar")
    assert train["split"] == "train" and train["n"] == 4
    assert train["no_face"] == [str(layout / "train" / "sad" / "blank.png")]
    assert evaluate(tiny_model_path, layout, split="train", detector="haar",
                    classes=["sad"])["n"] == 2
    with pytest.raises(ConfigError, match=r"--split 'test' not in .*layout; it has val, train"):
        evaluate(tiny_model_path, layout, split="test", detector="haar")
    with pytest.raises(ConfigError, match="--split 'val' not in .*photos; it has all"):
        evaluate(tiny_model_path, root, split="val", detector="haar")
    assert evaluate(tiny_model_path, root, split="all", detector="haar")["split"] == "photos"


def test_evaluate_missing_data(tiny_model_path, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        evaluate(tiny_model_path, tmp_path / "nosuch.csv")


def test_forced_detection_needs_a_folder(tiny_model_path, sample_csv, tmp_path):
    for data in (sample_csv, tmp_path / "nosuch"):
        with pytest.raises(ConfigError, match="--faces detect needs class folders of photos"):
            evaluate(tiny_model_path, data, faces="detect")


def test_evaluate_uses_the_models_own_tta_unless_told(sample_csv, tmp_path):
    from fixtures.tiny_model import make_tiny_model
    from test_pipeline import flip_model

    from emotiscope.training.evaluate import evaluate
    flip = flip_model(tmp_path / "flip.onnx")
    assert evaluate(flip, sample_csv)["tta"] == "flip"
    assert evaluate(flip, sample_csv, tta="none")["tta"] == "none"
    assert evaluate(make_tiny_model(tmp_path / "plain.onnx"), sample_csv)["tta"] == "none"
