"""End-to-end checks of the model shipped in src/emotiscope/models (no skips: it must be there)."""

from __future__ import annotations

import json

import pytest

from emotiscope.classify import EmotionClassifier
from emotiscope.cli import main
from emotiscope.model_file import bundled_model_path, file_sha256

FER_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture(scope="module")
def bundled():
    return EmotionClassifier()


def test_bundled_model_is_shipped_with_a_matching_checksum(bundled):
    path = bundled_model_path()
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().split()[0] == file_sha256(path) == bundled.info.sha256
    assert path.stat().st_size < 10_000_000  # issue 9: at most 10 MB


def test_bundled_model_carries_its_contract(bundled):
    meta = bundled.info.metadata
    assert bundled.labels == FER_LABELS
    assert (bundled.info.spec.size, bundled.info.spec.channels) == (48, 1)
    # issue 9: one wide compact network (40-80-160-240), one view by default, calibrated
    assert meta["arch"] == "compact" and not bundled.info.flip_tta
    assert meta["model_args"]["widths"] == [40, 80, 160, 240]
    assert 0.5 < meta["temperature"] < 1.5 and meta["metrics"]["calibration"]["ece_after"] < 0.05
    views = 2 if bundled.info.flip_tta else 1  # the views every verb classifies by default
    assert meta["metrics"]["macs"] * views <= 150e6  # <= 300 MFLOPs per face (issue 9)
    assert meta["training"]["command"].startswith(("emotiscope train ", "emotiscope export "))
    validation = meta["metrics"]["validation"]
    assert validation["accuracy"] >= 0.69 and set(validation["per_class"]) == set(FER_LABELS)


def test_bundled_model_on_the_sample_csv(shared_sample_csv, tmp_path, monkeypatch, capsys):
    # 175 PublicTest faces, 25 per class (so disgust weighs as much as happy): measured 0.606.
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path))
    assert main(["evaluate", str(shared_sample_csv), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "val" and report["n"] == 175
    assert report["accuracy"] >= 0.60
    assert report["per_class"]["happy"]["recall"] >= 0.75
