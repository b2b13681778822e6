"""Live run tracking: per-epoch history.json, metrics.csv and curves.png; TensorBoard; --config;
`runs compare`; quiet and log-friendly progress; `data samples --augment`."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import cv2
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

from fixtures.training import TRAINING_MARKS, config  # noqa: E402

from emotiscope.cli import main  # noqa: E402
from emotiscope.training import loop  # noqa: E402

pytestmark = TRAINING_MARKS


@pytest.fixture(scope="module")
def two_runs(sample_csv, tmp_path_factory):
    """Two finished runs; the first one's files as they were after its first epoch."""
    out = tmp_path_factory.mktemp("runs")
    seen = {}

    def after_epoch(trainer):
        if trainer.epoch == 1:
            rows = list(csv.DictReader((trainer.run_dir / "metrics.csv").open()))
            seen.update(rows=rows, curves=(trainer.run_dir / "curves.png").is_file(),
                        history=json.loads((trainer.run_dir / "history.json").read_text()))

    a = loop.train(config(sample_csv, out, epochs=2, name="a"), on_epoch_end=after_epoch)
    b = loop.train(config(sample_csv, out, epochs=1, lr=0.05, name="b"))
    return a, b, seen


def test_logs_are_written_after_every_epoch(two_runs):
    a, _, seen = two_runs
    assert len(seen["rows"]) == 1 and seen["curves"] and len(seen["history"]) == 1
    assert set(seen["rows"][0]) >= {"epoch", "lr", "train_loss", "train_ce", "train_acc", "val_loss",
                                    "val_acc", "seconds"}
    rows = list(csv.DictReader((a / "metrics.csv").open()))
    history = json.loads((a / "history.json").read_text())
    assert [int(r["epoch"]) for r in rows] == [h["epoch"] for h in history] == [1, 2]


def test_train_ce_is_plain_cross_entropy_beside_the_smoothed_objective(two_runs):
    history = json.loads((two_runs[0] / "history.json").read_text())
    for row in history:  # label smoothing 0.1 adds to the objective; the plain CE has none
        assert row["train_ce"] != row["train_loss"] and 0 < row["train_ce"] < 10


def test_runs_compare_prints_a_table(two_runs, capsys, tmp_path):
    a, b, _ = two_runs
    assert main(["runs", "compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["run", "best", "val", "acc"]
    assert str(a) in lines[1] and "2/2" in lines[1] and "0.1" in lines[1]
    assert str(b) in lines[2] and "1/1" in lines[2] and "0.05" in lines[2]
    assert main(["runs", "compare", str(a), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    history = json.loads((a / "history.json").read_text())
    assert row["best_val_acc"] == max(h["val_acc"] for h in history) and row["epochs_run"] == 2
    assert main(["runs", "compare", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a run folder" in err[0]
    assert main(["runs", "compare", str(a.parent)]) == 1  # train's --out, which holds the runs
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"emotiscope runs: error: {a.parent} is not a run folder but holds runs; pass them: "
                   f"emotiscope runs compare {a.parent / '*'}"]


@pytest.mark.parametrize("name, text, what", [
    ("history.json", "[1, 2]", "not a list of epochs"), ("history.json", "{}", "not a list of epochs"),
    ("config.json", "[1]", "not a JSON object of settings"),
])
def test_runs_compare_names_a_damaged_history_or_config(tmp_path, capsys, name, text, what):
    (tmp_path / "config.json").write_text('{"lr": 0.1}')
    (tmp_path / "history.json").write_text("[]")
    (tmp_path / name).write_text(text)
    assert main(["runs", "compare", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot read {tmp_path / name} ({what})" in err[0], err


def test_config_accepts_a_runs_own_config_and_flags_override_it(two_runs, tmp_path, capsys):
    b = two_runs[1]
    assert main(["train", "--config", str(b / "config.json"), "--out", str(tmp_path), "--name", "again",
                 "--seed", "3"]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    old, new = (json.loads((d / "config.json").read_text()) for d in (b, run))
    assert new["seed"] == 3 and new["name"] == "again" and new["out"] == str(tmp_path)
    assert {k: v for k, v in new.items() if k not in ("seed", "name", "out")} == \
           {k: v for k, v in old.items() if k not in ("seed", "name", "out")}
    bad = tmp_path / "bad.json"
    bad.write_text('{"lr": 0.1, "nosuch": 1}')
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown key(s) nosuch" in capsys.readouterr().err


def test_tensorboard_missing_is_one_line(sample_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    assert main(["train", str(sample_csv), "--tensorboard", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install tensorboard" in err[0]
    assert not any(tmp_path.iterdir())


def test_tensorboard_gets_every_epochs_scalars(sample_csv, tmp_path, monkeypatch):
    written = []

    class Writer:
        def __init__(self, logdir):
            written.append(("dir", logdir))

        def add_scalar(self, key, value, step):
            written.append((key, step))

        def flush(self):
            pass

        def close(self):
            written.append(("closed", None))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    run = loop.train(config(sample_csv, tmp_path, epochs=2, tensorboard=True))
    assert written[0] == ("dir", str(run / "tensorboard"))
    assert ("val_acc", 1) in written and ("val_acc", 2) in written and ("train_ce", 2) in written
    assert written[-1] == ("closed", None)


def test_quiet_and_log_friendly_progress(sample_csv, tmp_path, capsys):
    argv = ["train", str(sample_csv), "--epochs", "2", "--batch-size", "32", "--threads", "1",
            "--widths", "8,8,16,16", "--depths", "1,1,1,1", "--out", str(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err  # not a terminal here: no bars, one line per epoch
    assert "\r" not in err
    assert [line.split()[1] for line in err.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_data_samples_augment_previews_the_augmentation(sample_csv, tmp_path, capsys):
    plain, aug = tmp_path / "plain.png", tmp_path / "aug.png"
    assert main(["data", "samples", str(sample_csv), "-n", "2", "--out", str(plain)]) == 0
    assert main(["data", "samples", str(sample_csv), "-n", "2", "--augment", "--out", str(aug)]) == 0
    a, b = cv2.imread(str(plain)), cv2.imread(str(aug))
    assert a.shape == b.shape and (a != b).any()
    assert main(["data", "samples", str(sample_csv), "--augment", "rotate=400",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "rotate=400 is out of range" in capsys.readouterr().err
