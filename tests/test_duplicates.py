"""Near-duplicate detection between an evaluation split and the training split."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotiscope.cli import main
from emotiscope.training.duplicates import THRESHOLD, best_match, near_duplicates, thumbnails


def smooth_faces(n: int, seed: int) -> np.ndarray:
    """n distinct 48x48 uint8 images with face-like low-frequency structure."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 6, 6)).astype(np.float32)
    return np.stack([cv2.resize(s, (48, 48), interpolation=cv2.INTER_CUBIC) for s in small]).clip(0, 255) \
        .astype(np.uint8)


def jpeg(face: np.ndarray, quality: int = 60) -> np.ndarray:
    encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def test_thumbnails_are_standardised():
    rows = thumbnails(smooth_faces(5, 0))
    assert rows.shape == (5, 256)
    np.testing.assert_allclose(rows.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-3)


def test_reencoded_shifted_and_mirrored_copies_are_twins_and_others_are_not():
    train = smooth_faces(300, 1)
    copies = np.stack([jpeg(train[3]), np.roll(train[10], 1, axis=1), train[20][:, ::-1],
                       np.clip(train[30].astype(int) + 12, 0, 255).astype(np.uint8)])
    others = smooth_faces(50, 2)
    sim, index = best_match(np.concatenate([copies, others]), train)
    assert list(index[:4]) == [3, 10, 20, 30]
    assert (sim[:4] >= THRESHOLD).all()
    assert (sim[4:] < THRESHOLD).all()
    mask = near_duplicates(np.concatenate([copies, others]), train)
    assert mask.sum() == 4 and mask[:4].all()


def test_memory_is_chunked_and_empty_inputs_work():
    train = smooth_faces(20, 3)
    sim, index = best_match(train[:7], train, chunk=2)
    assert list(index) == list(range(7)) and (sim > 0.999).all()
    assert near_duplicates(train[:0], train).shape == (0,)
    assert not near_duplicates(train[:3], train[:0]).any()


def csv_with_twins(tmp_path) -> Path:
    """A fer2013.csv of 40 training faces and 16 PublicTest faces, 6 of them twins of training ones."""
    train, other = smooth_faces(40, 4), smooth_faces(10, 5)
    val = np.concatenate([train[:6], other])  # 6 twins of training faces, 10 new faces
    rows = ["emotion,pixels,Usage"]
    for usage, faces in (("Training", train), ("PublicTest", val)):
        rows += [f"{i % 7},{' '.join(map(str, f.ravel()))},{usage}" for i, f in enumerate(faces)]
    csv = tmp_path / "fer.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_evaluate_reports_duplicate_free_accuracy(tmp_path, tiny_model_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))
    csv = csv_with_twins(tmp_path)
    assert main(["evaluate", str(csv), "--split", "val", "--model", str(tiny_model_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    free = report["duplicate_free"]
    assert free["excluded"] == 6 and free["n"] == 10 and free["threshold"] == THRESHOLD
    assert main(["evaluate", str(csv), "--split", "train", "--model", str(tiny_model_path), "--json"]) == 0
    assert "duplicate_free" not in json.loads(capsys.readouterr().out)


def test_evaluate_says_so_when_no_face_has_a_twin(tmp_path, tiny_model_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))
    csv = csv_with_twins(tmp_path)
    lines = csv.read_text().splitlines()
    test_rows = [r for r in lines[1:] if r.endswith(",PublicTest")][6:]  # the 10 new faces only
    csv.write_text("\n".join([lines[0]] + [r for r in lines[1:] if r.endswith(",Training")]
                             + test_rows) + "\n")
    assert main(["evaluate", str(csv), "--split", "val", "--model", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    assert "no face has a near-twin in train: the accuracy above is duplicate-free" in out
    assert "without the 0 faces" not in out


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript",
                            "ignore:The feature will be removed")
def test_training_reports_validation_accuracy_without_twins(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from fixtures.training import config

    from emotiscope.training.loop import train

    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))
    run = train(config(csv_with_twins(tmp_path), tmp_path / "runs", epochs=2, batch_size=16))
    history = json.loads((run / "history.json").read_text())
    report = json.loads((run / "report.json").read_text())
    assert report["duplicate_free"]["excluded"] == 6 and report["duplicate_free"]["n"] == 10
    assert all(0 <= row["val_acc_dup_free"] <= 1 for row in history)
    best = history[report["best_epoch"] - 1]
    assert report["duplicate_free"]["accuracy"] == pytest.approx(best["val_acc_dup_free"], abs=1e-4)
    assert report["calibration"]["n"] == 16  # fewer than MIN_FIT would be left: fitted on all
