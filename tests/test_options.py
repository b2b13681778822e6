"""RecognizerOptions: one flag table for every inference verb."""

from __future__ import annotations

import argparse

import pytest

from emotiscope.cli import build_parser, main
from emotiscope.errors import ConfigError
from emotiscope.options import DETECTION, RecognizerOptions, options_from_args

VERBS = ("predict", "video", "webcam", "serve", "evaluate")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def _shown_flags(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """flag -> (dest, default, choices) of every flag --help shows."""
    return {flag: (a.dest, a.default, a.choices) for a in parser._actions
            if a.help != argparse.SUPPRESS for flag in a.option_strings}


def test_every_inference_verb_shows_the_same_detection_flags_with_the_same_defaults():
    parsers = _subparsers()
    expected = _shown_flags(parsers["predict"])
    detection = {f for f, (dest, _, _) in expected.items() if dest in DETECTION}
    assert detection == {"--model", "--detector", "--min-face", "--threshold", "--max-side",
                         "--max-megapixels"}
    for verb in VERBS:
        shown = _shown_flags(parsers[verb])
        assert {f: shown.get(f) for f in detection} == {f: expected[f] for f in detection}, verb
        text = " ".join(parsers[verb].format_help().split())  # unwrapped
        assert "--max-side PX" in text and "(default: 640)" in text and "(default: 50)" in text
        assert "--detect-size" not in text  # deprecated aliases are not advertised


def test_flag_defaults_are_the_dataclass_defaults():
    args = _subparsers()["predict"].parse_args([])
    assert options_from_args(args) == RecognizerOptions()


def test_deprecated_detect_size_still_works_and_warns(capsys):
    args = _subparsers()["video"].parse_args(["in.mp4", "--detect-size", "480"])
    assert options_from_args(args).max_side == 480
    err = capsys.readouterr().err
    assert "--detect-size is deprecated" in err and "--max-side" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, flag", [
    (["video", "in.mp4", "--detect-size", "10"], "--detect-size"),
    (["video", "in.mp4", "--max-side", "10"], "--max-side"),
    (["video", "in.mp4", "--detector", "nope"], "--detector"),
    (["webcam", "--detector", "nope"], "--detector"),
    (["serve", "--min-face", "0"], "--min-face"),
    (["evaluate", "data", "--threshold", "2"], "--threshold"),
    (["predict", "x.jpg", "--max-megapixels", "0"], "--max-megapixels"),
    (["predict", "x.jpg", "--max-megapixels", "inf"], "--max-megapixels"),
    (["predict", "x.jpg", "--max-megapixels", "1e400"], "--max-megapixels"),
    (["predict", "x.jpg", "--max-megapixels", "nan"], "--max-megapixels"),
    (["predict", "x.jpg", "--max-megapixels", "1e-9"], "--max-megapixels"),  # below one pixel
    (["predict", "x.jpg", "--min-face", "200000"], "--min-face"),
    # float flags refuse nan and inf, in every verb (one parser, options.finite_float)
    (["video", "in.mp4", "--min-seconds", "nan"], "--min-seconds"),
    (["video", "in.mp4", "--keep-for", "nan"], "--keep-for"),
    (["video", "in.mp4", "--smooth", "inf"], "--smooth"),
    (["batch", "x.jpg", "--out", "o", "--keep-for", "nan"], "--keep-for"),
    (["batch", "x.jpg", "--out", "o", "--smooth", "-inf"], "--smooth"),
    (["serve", "--max-upload-mb", "inf"], "--max-upload-mb"),
    (["train", "--data", "d", "--lr", "nan"], "--lr"),
])
def test_bad_values_name_the_flag_typed(argv, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a value wrongly taken must not write in the checkout
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}:" in last
    if flag == "--min-face":
        assert "1 to 100000 pixels" in last


def test_options_check_their_values():
    for bad in ({"min_face": 0}, {"threshold": 1.5}, {"max_side": 10}, {"detector": "nope"},
                {"assume_crop": "sometimes"}, {"max_pixels": 0}, {"flip_tta": "no"},
                {"flip_tta": "none"}, {"flip_tta": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RecognizerOptions(**bad)
    assert [RecognizerOptions(flip_tta=v).flip_tta for v in (None, True, False)] == [None, True, False]
    assert RecognizerOptions(max_side=None).max_side == 640  # None: the detector default
    with pytest.raises(TypeError):
        RecognizerOptions().replace(no_such_field=1)


def test_the_recognizer_takes_options_keywords_or_both(tiny_model_path):
    from emotiscope.pipeline import EmotionRecognizer

    options = RecognizerOptions(model=tiny_model_path, detector="haar", min_face=30)
    assert EmotionRecognizer(options).options == options
    assert EmotionRecognizer(options=options).options == options
    by_keywords = EmotionRecognizer(tiny_model_path, "haar", min_face=30)
    assert by_keywords.options == options and by_keywords.min_face == 30
    changed = EmotionRecognizer(options=options, threshold=0.9)
    assert changed.options == options.replace(threshold=0.9)
    assert changed.detector.threshold == 0.9


@pytest.mark.parametrize("bad", [{"smooth": float("inf")}, {"keep_for": float("nan")},
                                 {"smooth": -1.0}, {"detect_every": 0}])
def test_the_tracking_settings_of_the_python_api_refuse_non_finite_values(bad):
    from emotiscope.batch import VideoSettings
    from emotiscope.track import FaceTracker
    from emotiscope.videoanalysis import VideoAnalyzer

    with pytest.raises(ValueError, match=next(iter(bad))):
        VideoSettings(**bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        VideoAnalyzer(RecognizerOptions(model="never loaded.onnx"), **bad)
    if "detect_every" not in bad:
        with pytest.raises(ValueError, match=next(iter(bad))):
            FaceTracker(["happy"], **bad)
