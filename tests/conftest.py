from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.tiny_model import make_tiny_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLE_CSV = SHARED / "datasets" / "fer2013-sample.csv"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A 7-label tiny ONNX model with emotiscope metadata (random weights)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def recognizer(tiny_model_path):
    """An EmotionRecognizer with the default detector and the tiny random-weight model."""
    from emotiscope.pipeline import EmotionRecognizer

    return EmotionRecognizer(model=tiny_model_path)


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    if not SAMPLE_CSV.is_file():
        pytest.skip(f"{SAMPLE_CSV} not present (../shared beside the checkout)")
    return SAMPLE_CSV


@pytest.fixture(scope="module")
def isolated_cache(tmp_path_factory):
    """$EMOTISCOPE_CACHE in a fresh folder for one test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
