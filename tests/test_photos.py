"""Training on class folders of photos: faces detected and cropped as inference crops them
(training/photos.py), photos with no face reported, and `emotiscope data crop`.

The photos are generated: faces of the bundled sample photo pasted at known places onto a
plain background, and one photo with no face."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from fixtures.images import iou, sample_faces

from emotiscope.cli import build_parser, main
from emotiscope.errors import ConfigError
from emotiscope.images import load_image, sample_image_path, save_image
from emotiscope.pipeline import EmotionRecognizer
from emotiscope.preprocess import face_crop, resize_face
from emotiscope.training import data, photos
from emotiscope.training.config import TrainConfig
from emotiscope.training.data import load_folder
from emotiscope.training.photos import FaceCropper, face_cropper
from emotiscope.types import Box

MARGIN = 40  # pixels of the sample photo kept around each face


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch) -> Path:
    """Every test caches under tmp_path, never in ~/.cache."""
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "emotiscope"


def face_photo(face: Box, at: tuple[int, int], hw=(360, 480)) -> tuple[np.ndarray, Box]:
    """A grey canvas with one face of the sample photo pasted at `at` (y, x); and the face's box
    in the canvas."""
    sample = load_image(sample_image_path())
    y0, x0 = max(0, face.y - MARGIN), max(0, face.x - MARGIN)
    patch = sample[y0:face.y + face.h + MARGIN, x0:face.x + face.w + MARGIN]
    canvas = np.full((*hw, 3), 128, np.uint8)
    y, x = at
    canvas[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    return canvas, Box(x + face.x - x0, y + face.y - y0, face.w, face.h)


@pytest.fixture
def photo_tree(tmp_path) -> tuple[Path, dict[str, Box]]:
    """photos/happy/{a.png, b.jpg}, photos/sad/{c.png, blank.png}: three photos of one face
    each (their boxes, by relative file name) and one with no face."""
    root, boxes = tmp_path / "photos", {}
    faces = sample_faces()
    for name, face, at in (("happy/a.png", faces[0], (50, 120)), ("happy/b.jpg", faces[1], (150, 20)),
                           ("sad/c.png", faces[2], (10, 300))):
        canvas, boxes[name] = face_photo(face, at)
        save_image(root / name, canvas)
    blank = np.dstack([np.tile(np.linspace(40, 220, 480, dtype=np.uint8), (360, 1))] * 3)
    save_image(root / "sad" / "blank.png", blank)
    return root, boxes


def test_photo_folders_give_the_faces_inference_sees(photo_tree):
    root, boxes = photo_tree
    cropper = face_cropper(root, "auto", 0.0)
    assert isinstance(cropper, FaceCropper)
    fs = load_folder(root, cropper=cropper)["all"]
    assert list(fs.files) == ["happy/a.png", "happy/b.jpg", "sad/c.png"]
    assert fs.images.shape == (3, 48, 48) and fs.counts() == {"happy": 2, "sad": 1}
    recognizer = EmotionRecognizer()
    for face, name in zip(fs.images, fs.files, strict=True):
        photo = load_image(root / name)
        # exactly the largest face the recognizer detects, cropped with the model's rule ...
        box = max(recognizer.detect(photo), key=lambda b: b.area)
        np.testing.assert_array_equal(face, resize_face(face_crop(photo, box, 0.0), 48))
        # ... which is the face pasted there (its crop is far closer than the squashed photo)
        assert iou(box, boxes[name]) > 0.8
        known = resize_face(face_crop(photo, boxes[name], 0.0), 48).astype(int)
        assert np.abs(face - known).mean() < 0.6 * np.abs(resize_face(photo, 48) - known).mean()


def test_a_photo_with_no_face_is_skipped_and_reported(photo_tree, caplog):
    root, _ = photo_tree
    blank = str(root / "sad" / "blank.png")
    with caplog.at_level(logging.WARNING):
        fs = load_folder(root, cropper=FaceCropper())["all"]
    assert fs.skipped == fs.no_face == [blank]
    lines = [r.getMessage() for r in caplog.records if "no face" in r.getMessage()]
    assert len(lines) == 1 and "1 photo(s)" in lines[0] and blank in lines[0]


def test_detected_faces_are_cached_under_their_detection_settings(photo_tree, cache_in_tmp,
                                                                  monkeypatch, caplog):
    root, _ = photo_tree
    first = load_folder(root, cropper=FaceCropper())["all"]
    assert len(list(cache_in_tmp.glob("*.npz"))) == 1
    real_read = data._read_face
    monkeypatch.setattr(data, "_read_face", lambda *a: pytest.fail("detected faces again"))
    with caplog.at_level(logging.WARNING):
        again = load_folder(root, cropper=FaceCropper())["all"]
    np.testing.assert_array_equal(first.images, again.images)
    assert again.no_face == first.no_face and "no face" in caplog.text  # reported from the cache
    monkeypatch.setattr(data, "_read_face", real_read)
    wider = load_folder(root, cropper=FaceCropper(margin=0.25))["all"]
    squashed = load_folder(root)["all"]  # no detection: another cache entry
    assert len(list(cache_in_tmp.glob("*.npz"))) == 3
    assert not np.array_equal(wider.images, first.images)
    assert len(squashed) == 4 and not np.array_equal(squashed.images[:3], first.images)


def test_crop_folders_are_read_as_they_are(tmp_path):
    root = tmp_path / "crops"
    rng = np.random.default_rng(0)
    for cls in ("happy", "sad"):
        for k in range(2):
            save_image(root / cls / f"{k}.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    assert face_cropper(root, "auto", 0.0) is None
    assert face_cropper(root, "crops", 0.0) is None
    assert isinstance(face_cropper(root, "detect", 0.0), FaceCropper)
    fs = load_folder(root)["all"]
    assert len(fs) == 4 and fs.skipped == []
    np.testing.assert_array_equal(fs.images[0], resize_face(load_image(root / "happy" / "0.png"), 48))


def test_faces_detect_needs_a_folder(tmp_path):
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels\n")
    assert face_cropper(csv, "auto", 0.0) is None
    with pytest.raises(ConfigError, match="--faces detect needs class folders"):
        face_cropper(csv, "detect", 0.0)


def test_training_loads_photos_through_the_face_cropper(photo_tree):
    pytest.importorskip("torch")
    from emotiscope.training.prepare import load_data

    root, _ = photo_tree
    detected = load_data(root, TrainConfig(data=str(root)))["all"]
    assert len(detected) == 3 and detected.no_face == [str(root / "sad" / "blank.png")]
    assert len(load_data(root, TrainConfig(data=str(root), faces="crops"))["all"]) == 4


def test_train_faces_flag_matches_evaluate():
    parser = build_parser()
    assert parser.parse_args(["train", "d", "--faces", "detect"]).faces == "detect"
    assert TrainConfig().faces == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "d", "--faces", "photos"])
    help_of = {}
    for verb in ("train", "evaluate"):
        sub = parser._subparsers._group_actions[0].choices[verb]
        action = next(a for a in sub._actions if "--faces" in a.option_strings)
        help_of[verb] = (tuple(action.choices), action.help.split(";")[0].split(" (default")[0])
    assert help_of["train"] == help_of["evaluate"]


def test_data_crop_writes_the_faces_and_refuses_to_overwrite(photo_tree, tmp_path, capsys):
    root, _ = photo_tree
    out = tmp_path / "crops"
    assert main(["data", "crop", str(root), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 image(s) with no face found" in printed and str(root / "sad" / "blank.png") in printed
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["happy/a.png", "happy/b.png", "sad/c.png"]
    expected = load_folder(root, cropper=FaceCropper())["all"]
    for face, name in zip(expected.images, written, strict=True):
        np.testing.assert_array_equal(load_image(out / name)[:, :, 0], face)
    # the crops are a crop folder: training reads them as they are
    assert face_cropper(out, "auto", 0.0) is None
    before = (out / "happy" / "a.png").read_bytes()
    assert main(["data", "crop", str(root), str(out), "--crop-margin", "0.3"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "happy" / "a.png").read_bytes() == before
    assert main(["data", "crop", str(root), str(out), "--crop-margin", "0.3", "--force"]) == 0
    assert (out / "happy" / "a.png").read_bytes() != before


def test_data_samples_draws_the_faces_training_takes_from_photos(photo_tree, tmp_path, capsys,
                                                                monkeypatch):
    from emotiscope.training import plots

    drawn: list[np.ndarray] = []
    monkeypatch.setattr(plots, "save_grid", lambda faces, *a, **k: drawn.append(faces))
    root, _ = photo_tree
    argv = ["data", "samples", str(root), "--out", str(tmp_path / "grid.png")]
    assert main(argv) == 0
    assert "largest face found in each photo" in capsys.readouterr().out
    expected = load_folder(root, cropper=FaceCropper())["all"]
    assert len(drawn[0]) == 3  # the photo with no face is left out, as training leaves it
    assert {f.tobytes() for f in drawn[0]} == {f.tobytes() for f in expected.images}
    assert main([*argv, "--force", "--faces", "crops"]) == 0  # whole photos, squashed
    assert len(drawn[1]) == 4 and "largest face" not in capsys.readouterr().out
    assert main([*argv, "--force", "--crop-margin", "9"]) == 2
    assert "--crop-margin 9 must be between" in capsys.readouterr().err


def test_data_samples_finds_faces_only_in_the_split_it_draws(photo_tree, tmp_path, capsys,
                                                             monkeypatch):
    import shutil

    from emotiscope.training import plots

    drawn: list[np.ndarray] = []
    monkeypatch.setattr(plots, "save_grid", lambda faces, *a, **k: drawn.append(faces))
    photos_dir, _ = photo_tree
    root = tmp_path / "layout"
    shutil.copytree(photos_dir, root / "train")
    shutil.copytree(photos_dir, root / "val")
    read, read_face = [], data._read_face
    monkeypatch.setattr(data, "_read_face", lambda path, *a: read.append(path) or read_face(path, *a))
    argv = ["data", "samples", str(root), "--split", "val", "--out", str(tmp_path / "grid.png")]
    assert main(argv) == 0
    assert len(drawn[0]) == 3 and "faces from val" in capsys.readouterr().out
    assert sorted(p.relative_to(root).as_posix() for p in read) == [  # train's photos not read
        "val/happy/a.png", "val/happy/b.jpg", "val/sad/blank.png", "val/sad/c.png"]


def test_data_crop_fails_when_no_face_is_found(tmp_path, capsys):
    src = tmp_path / "blank" / "happy"
    save_image(src / "x.png", np.full((200, 300, 3), 90, np.uint8))
    assert main(["data", "crop", str(tmp_path / "blank"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no face found" in err[0]
    assert main(["data", "crop", str(tmp_path / "blank"), str(tmp_path / "blank" / "c")]) != 0
    assert "inside SRC" in capsys.readouterr().err


def test_largest_face_picks_the_biggest_box():
    image = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    small, big = Box(0, 0, 10, 10), Box(20, 20, 50, 50)
    np.testing.assert_array_equal(photos.largest_face(image, [small, big], 0.0, 48),
                                  resize_face(face_crop(image, big, 0.0), 48))
    assert photos.largest_face(image, [], 0.0, 48) is None


def test_crop_names_keep_every_image_apart(tmp_path):
    from emotiscope.training.photos import crop_names

    src, dst = tmp_path / "src", tmp_path / "dst"
    names = ["happy/a.jpeg", "happy/a.jpg", "happy/a.png", "happy/b.jpg", "happy/c.jpg.png", "happy/c.jpg",
             "happy/c.png", "sad/a.jpg"]
    targets = crop_names(src, dst, [src / n for n in sorted(names)])
    assert len(set(targets.values())) == len(names)
    got = {str(k.relative_to(src)): str(v.relative_to(dst)) for k, v in targets.items()}
    assert got["happy/a.jpg"] == "happy/a.jpg.png" and got["happy/a.png"] == "happy/a.png.png"
    assert got["happy/b.jpg"] == "happy/b.png" and got["sad/a.jpg"] == "sad/a.png"
