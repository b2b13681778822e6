"""`train` flags are generated from TrainConfig's fields: every field has its flag, its help
shows the default, and a flag given sets exactly its field."""

from __future__ import annotations

from dataclasses import fields

import pytest

from emotiscope.cli import build_parser
from emotiscope.commands import _flags
from emotiscope.commands.train import _config
from emotiscope.errors import ConfigError
from emotiscope.training.config import TrainConfig, flag_name


def _parse(*argv):
    return build_parser().parse_args(["train", *argv])


def test_every_field_has_a_flag_and_help_shows_its_default(capsys):
    parser = build_parser()
    try:
        parser.parse_args(["train", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(TrainConfig):
        if f.name not in ("size",):  # size is fixed by the model architecture (48)
            assert flag_name(f.name).split("/")[0] in text or f.name == "data", f.name
    shown = [f for f in _flags.generated(TrainConfig)
             if not isinstance(_flags.default_of(f), bool) and _flags.default_of(f) is not None]
    assert text.count("(default: ") >= len(shown)
    assert "(default: 60, 10 with --init-from)" in text and "(default: 0.0005)" in text
    assert "(default: runs)" in text and "erase=0.5" in text


def test_flags_given_set_their_fields_and_nothing_else():
    cfg = _config(_parse("x.csv", "--epochs", "3", "--no-amp", "--classes", "happy, sad",
                         "--strict", "--lr", "0.05", "--distill-tta", "flip"))
    changed = {f.name for f in fields(TrainConfig)
               if getattr(cfg, f.name) != getattr(TrainConfig(), f.name)}
    assert changed == {"data", "epochs", "amp", "classes", "strict", "lr", "distill_tta"}
    assert (cfg.epochs, cfg.amp, cfg.classes, cfg.strict, cfg.lr) == (3, False, ["happy", "sad"],
                                                                      True, 0.05)


def test_nothing_given_is_the_dataclass_default():
    assert _config(_parse("x.csv")) == TrainConfig(data="x.csv")


def test_flag_names_for_messages():
    assert flag_name("amp") == "--no-amp" and flag_name("model_args") == "--widths/--depths"
    assert flag_name("batch_size") == "--batch-size" and flag_name("data") == "DATA"
    assert flag_name("config") == "--config"


def _config_file(tmp_path, **fields) -> str:
    import json

    path = tmp_path / f"config-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(TrainConfig(data="x.csv", **fields).to_dict()))
    return str(path)


@pytest.mark.parametrize("fields, message", [
    ({"epochs": "x"}, "epochs must be an integer, got 'x'"),
    ({"batch_size": None}, "batch_size must be an integer, got null"),
    ({"model_args": [1]}, r"model_args must be a JSON object, got \[1\]"),
    ({"lr": True}, "lr must be a number, got true"),
    ({"classes": ["happy", 1]}, r"classes must be a list of strings or null, got \['happy', 1\]"),
    ({"augment": {"flip": "x"}}, "augment.flip must be a number, got 'x'"),
])
def test_a_config_value_of_the_wrong_type_is_named_in_one_line(tmp_path, fields, message):
    import json

    path = tmp_path / "c.json"
    path.write_text(json.dumps(fields))
    with pytest.raises(ConfigError, match=f"^--config {path}: {message}; fix or remove that key$"):
        _config(_parse("x.csv", "--config", str(path)))
    path.write_text(json.dumps({"threads": None, "val_fraction": 1, "classes": None, "lr": 1}))
    assert _config(_parse("x.csv", "--config", str(path))).val_fraction == 1


def test_another_arch_on_top_of_a_config_drops_its_widths_and_depths(tmp_path):
    compact = _config_file(tmp_path, model_args={"widths": [8, 8, 8, 8], "depths": [1, 1, 1, 1]})
    assert _config(_parse("--config", compact, "--arch", "resnet")).model_args == {}
    resnet = _config_file(tmp_path, arch="resnet", model_args={"blocks": [1, 1, 1, 1]})
    cfg = _config(_parse("--config", resnet, "--arch", "compact", "--depths", "2,2,2,2"))
    assert (cfg.arch, cfg.model_args) == ("compact", {"depths": [2, 2, 2, 2]})


def test_widths_or_depths_on_top_of_a_config_keep_the_other(tmp_path):
    compact = _config_file(tmp_path, model_args={"widths": [8, 8, 8], "depths": [1, 1, 1]})
    assert _config(_parse("--config", compact, "--widths", "4,4,4")).model_args == {
        "widths": [4, 4, 4], "depths": [1, 1, 1]}
    resnet = _config_file(tmp_path, arch="resnet", model_args={"widths": [8, 8, 8, 8]})
    assert _config(_parse("--config", resnet, "--depths", "1,1,1,1")).model_args == {
        "widths": [8, 8, 8, 8], "blocks": [1, 1, 1, 1]}
    with pytest.raises(ConfigError, match="same number of stages.*with those of --config"):
        _config(_parse("--config", compact, "--widths", "4,4,4,4"))


@pytest.mark.parametrize("flags", [["--arch", "resnet"], ["--widths", "8,8,8,8"], ["--depths", "1,1,1,1"]])
def test_init_from_refuses_a_network_of_its_own(flags):
    with pytest.raises(ConfigError, match="--init-from takes the network"):
        _config(_parse("x.csv", "--init-from", "a.onnx", *flags))


@pytest.mark.parametrize("verb", [["train", "x.csv"], ["evaluate", "x.csv"]])
@pytest.mark.parametrize("text", ["", "happy,,sad", ",,", "happy,"])
def test_classes_with_an_empty_name_are_refused_in_one_line(verb, text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*verb, "--classes", text])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --classes:" in last and "holds an empty name" in last


def test_classes_in_a_config_file_may_be_a_comma_string(tmp_path):
    from emotiscope.commands.train import load_config

    assert load_config(_config_file(tmp_path, classes="happy, sad")).classes == ["happy", "sad"]
    with pytest.raises(ConfigError, match="classes 'happy,,sad' holds an empty name"):
        load_config(_config_file(tmp_path, classes="happy,,sad"))
