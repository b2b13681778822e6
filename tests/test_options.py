"""RecognizerOptions: one flag table for every inference verb."""

from __future__ import annotations

import argparse

import pytest

from emotiscope.cli import build_parser, main
from emotiscope.commands._flags import default_of
from emotiscope.errors import ConfigError
from emotiscope.options import DETECTION, RecognizerOptions, options_from_args
from emotiscope.training.config import TrainConfig

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

    with pytest.raises(ConfigError, match=next(iter(bad))):
        VideoSettings(**bad)
    with pytest.raises(ConfigError, match=next(iter(bad))):
        VideoAnalyzer(RecognizerOptions(model="never loaded.onnx"), **bad)
    if "detect_every" not in bad:
        with pytest.raises(ConfigError, match=next(iter(bad))):
            FaceTracker(["happy"], **bad)


# -- one vocabulary: the same option name means the same thing in every verb -------------------

# Shared names whose help (and default) is the verb's own, and why: their flags, kind, value
# parser, choices and metavar must still agree. (verb, name) pairs in OWN_HELP_IN likewise.
OWN_HELP = {
    "force": "what is overwritten (or started over) is each verb's own output",
    "json": "what is printed is each verb's own result",
    "split": "samples draw from train by default, evaluate tests on test",
    "classes": "train keeps a subset; evaluate maps a smaller model onto the data",
    "val": "train validates on it; export validates an ensemble on it",
    "augment": "train changes its augmentation; data samples shows it",
    "seed": "each verb's own random choices",
    "faces": "the clause after FACES_HELP says what the verb does with the face",
    "workers": "what runs in parallel is each verb's own (images, files, recognizers)",
}
OWN_HELP_IN = {
    ("export", "crop_margin"): "export sets the margin stored in the model file",
    ("webcam", "detect_every"): "live video detects more often: default 3, not 5",
}
# Shared names that mean different things (reported, kept: renaming public flags breaks scripts).
DIFFERENT = {
    "out": "a folder (predict, train, evaluate, batch) or a picture (data stats/samples)",
    "output": "video's annotated video, export's .onnx",
    "csv": "predict prints CSV on stdout; video writes its rows to the file named",
    "tta": "a switch in the inference verbs, a view name in evaluate and export (see below)",
}


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every verb and sub-verb ('data samples', 'runs compare') -> its parser."""
    found = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{path} {name}".strip()] = sub
                    walk(sub, f"{path} {name}".strip())

    walk(build_parser(), "")
    return found


def _definition(action: argparse.Action, verb: str) -> tuple:
    # train's flags default to None ("not given", so a config file or a resumed run can set
    # them); the default they stand for is TrainConfig's
    default = action.default
    if verb == "train" and action.dest in TrainConfig.__dataclass_fields__:
        default = default_of(TrainConfig.__dataclass_fields__[action.dest])
    kind = "store_true" if isinstance(action, argparse._StoreTrueAction) else type(action).__name__
    parse = None if action.type is str else action.type  # str is argparse's own default
    return (tuple(action.option_strings), kind, parse, tuple(action.choices or ()),
            action.metavar, action.help, repr(default))


def test_an_option_shared_by_verbs_has_one_definition():
    """Each option name, wherever it appears, has the same flags, parser, choices, metavar, help
    and default; OWN_HELP and OWN_HELP_IN may differ in help and default, DIFFERENT in all."""
    seen: dict[str, dict[str, tuple]] = {}
    for verb, parser in _verb_parsers().items():
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS \
                    and not isinstance(action, argparse._HelpAction):
                seen.setdefault(action.dest, {})[verb] = _definition(action, verb)
    differing = {}
    for dest, by_verb in seen.items():
        if dest in DIFFERENT:
            continue
        whole = {d for verb, d in by_verb.items()
                 if dest not in OWN_HELP and (verb, dest) not in OWN_HELP_IN}
        if len(whole) > 1 or len({d[:5] for d in by_verb.values()}) > 1:
            differing[dest] = by_verb
    assert not differing, differing
    assert set(OWN_HELP) | set(DIFFERENT) <= set(seen)  # no stale entries


def test_no_verb_defines_a_recognizer_flag_by_hand():
    """--model, --min-face, ... come from RecognizerOptions (add_recognizer_flags), never from
    a copy in a verb's module."""
    from dataclasses import fields
    from pathlib import Path

    import emotiscope.commands as commands

    # evaluate's and export's --tta name views (DIFFERENT); flip_tta's --tta is the switch
    flags = [f.metadata["flag"] for f in fields(RecognizerOptions) if f.name != "flip_tta"]
    copies = [f"{path.name}: {flag}" for path in Path(commands.__file__).parent.glob("*.py")
              for flag in flags if f'add_argument("{flag}"' in path.read_text(encoding="utf-8")]
    assert not copies, copies


def test_every_shown_option_says_what_it_does():
    silent = [f"{verb} {action.option_strings}" for verb, parser in _verb_parsers().items()
              for action in parser._actions if action.option_strings and not action.help]
    assert not silent, silent


def test_tta_means_the_mirror_image_in_every_verb():
    """`--tta` alone adds the mirror image and `--no-tta` leaves it out, in evaluate and export
    as in the inference verbs (evaluate's and export's named views still work)."""
    parsers = _verb_parsers()
    assert parsers["predict"].parse_args(["x.jpg", "--tta"]).flip_tta is True
    assert parsers["predict"].parse_args(["x.jpg", "--no-tta"]).flip_tta is False
    for verb, base in (("evaluate", ["data"]), ("export", ["a.pt"])):
        assert parsers[verb].parse_args([*base, "--tta"]).tta == "flip", verb
        assert parsers[verb].parse_args([*base, "--no-tta"]).tta == "none", verb
    assert parsers["evaluate"].parse_args(["d", "--tta", "multicrop"]).tta == "multicrop"
    assert parsers["evaluate"].parse_args(["d"]).tta is None  # as the model file says
    assert parsers["export"].parse_args(["a.pt", "--tta", "flip"]).tta == "flip"


@pytest.mark.parametrize("verb, data", [("evaluate", "/data/fer2013"), ("export", "run/best.pt")])
def test_tta_before_the_data_says_why_the_data_went_missing(verb, data, capsys):
    """`--tta DATA` reads DATA as the view; the one-line error says so and how to write it."""
    with pytest.raises(SystemExit) as exit:
        _verb_parsers()[verb].parse_args(["--tta", data])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"'{data}' is not a view" in err and "--tta alone means flip" in err


@pytest.mark.parametrize("bad", [{"min_face": "20"}, {"min_face": 2.5}, {"min_face": None},
                                 {"min_face": True}, {"threshold": "0.5"}, {"threshold": None},
                                 {"max_side": "320"}, {"max_side": 320.5}, {"model": 123}])
def test_options_of_the_wrong_type_are_a_config_error_naming_the_option(bad):
    """Notebook values ("0.5" from a widget, None) say which option and what to pass, not
    numpy/Python's "'<=' not supported between instances" from inside the check."""
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=f"^{name} must be"):
        RecognizerOptions(**bad)


def test_numpy_numbers_are_taken_as_options():
    import numpy as np

    options = RecognizerOptions(min_face=np.int64(30), threshold=np.float32(0.5))
    assert options.min_face == 30 and options.threshold == 0.5
