from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.fer import write_fer_csv, write_fer_folders  # noqa: E402
from fixtures.tiny_model import make_tiny_model  # noqa: E402

# The shared data beside the checkout, used by one integration test only. Point
# EMOTISCOPE_TEST_SHARED at an empty folder to run the suite as on a clean clone.
SHARED = Path(os.environ.get("EMOTISCOPE_TEST_SHARED")
              or Path(__file__).resolve().parents[1].parent / "shared")
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
def sample_csv(tmp_path_factory) -> Path:
    """A generated fer2013-format CSV shaped like the shared sample: 350 rows, 25 drawn faces
    per emotion in Training and in PublicTest (see fixtures/fer.py)."""
    return write_fer_csv(tmp_path_factory.mktemp("fer") / "fer2013-sample.csv")


@pytest.fixture(scope="session")
def fer_folders(tmp_path_factory) -> Path:
    """The extracted-FER layout train|val/<emotion>/<k>.png of generated faces, 5 per class."""
    return write_fer_folders(tmp_path_factory.mktemp("fer-folders"))


@pytest.fixture(scope="session")
def shared_sample_csv() -> Path:
    """The real FER-2013 sample in ../shared (for the one integration test that needs real faces)."""
    if not SAMPLE_CSV.is_file():
        pytest.skip(f"{SAMPLE_CSV} not present (../shared beside the checkout)")
    return SAMPLE_CSV


@pytest.fixture(scope="module")
def isolated_cache(tmp_path_factory):
    """$EMOTISCOPE_CACHE in a fresh folder for one test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
