"""Checkpoints: a crafted pickle never runs (export, train --init-from, train --resume), bad files
give one line, and --resume never redoes a finished run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

from fixtures.training import TRAINING_MARKS, config, face_folders  # noqa: E402

from emotiscope.cli import main  # noqa: E402
from emotiscope.errors import ConfigError, ModelError  # noqa: E402
from emotiscope.training import loop, runs  # noqa: E402
from emotiscope.training.checkpoint import RESUME_KEYS, load_checkpoint  # noqa: E402
from emotiscope.training.config import TrainConfig  # noqa: E402

pytestmark = TRAINING_MARKS


class Payload:
    """Unpickling this runs code: it writes `marker` (what a malicious .pt would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A .pt with every key a checkpoint has, whose "model" is a code-running payload."""
    ckpt = {key: 0 for key in RESUME_KEYS}
    ckpt.update(model=Payload(marker), config={"data": "x"}, labels=["a", "b"], arch="compact",
                spec={"size": 48, "channels": 1, "mean": 0.5, "std": 0.25}, history=[])
    torch.save(ckpt, path)
    return path


def error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"emotiscope {command}: error: ")
    return err[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return face_folders(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory) -> Path:
    return loop.train(config(data, tmp_path_factory.mktemp("runs"), batch_size=8))


def test_the_crafted_file_really_runs_code_when_unpickled(tmp_path):
    """The control: without weights_only the payload runs, so the refusals below mean something."""
    marker = tmp_path / "marker"
    crafted_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("entry", ["export", "init-from", "resume"])
def test_a_crafted_pickle_is_refused_and_never_runs(entry, data, tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    evil = crafted_checkpoint(run / ("last.pt" if entry == "resume" else "best.pt"), marker)
    argv = {"export": ["export", str(evil), "-o", str(tmp_path / "out.onnx")],
            "init-from": ["train", str(data), "--init-from", str(evil), "--epochs", "1",
                          "--batch-size", "8", "--out", str(tmp_path / "runs")],
            "resume": ["train", "--resume", str(run)]}[entry]
    assert main(argv) == 1
    line = error_line(capsys, argv[0])
    assert "is not an emotiscope checkpoint" in line and "refused for safety" in line
    assert not marker.exists()
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("content", [b"", b"garbage", "foreign", "list", "no-optimizer"])
def test_resume_with_a_bad_last_pt_is_one_line(content, tmp_path, capsys):
    last = tmp_path / "last.pt"
    if content == "foreign":
        torch.save({"weights": torch.zeros(2)}, last)
    elif content == "list":
        torch.save([1, 2], last)
    elif content == "no-optimizer":
        torch.save({k: 0 for k in RESUME_KEYS if k != "optimizer"}, last)
    else:
        last.write_bytes(content)
    assert main(["train", "--resume", str(tmp_path)]) == 1
    line = error_line(capsys, "train")
    assert f"--resume {last}" in line and "pass best.pt or last.pt" in line


def test_a_truncated_checkpoint_says_so_in_whole_words(tmp_path, capsys):
    torch.save({"model": {"w": torch.zeros(64, 64)}, "arch": "compact"}, tmp_path / "full.pt")
    (tmp_path / "last.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:2000])
    for argv in (["export", str(tmp_path / "last.pt")], ["train", "--resume", str(tmp_path)]):
        assert main(argv) == 1
        line = error_line(capsys, argv[0])
        assert "last.pt is not an emotiscope checkpoint (truncated or not a PyTorch checkpoint); " in line


def test_a_run_folder_given_for_a_checkpoint_names_the_files_to_pass(tmp_path, capsys):
    from emotiscope.training.prepare import load_init

    fix = f"is a folder; pass {tmp_path / 'best.pt'} (or {tmp_path / 'model.onnx'})"
    assert main(["export", str(tmp_path)]) == 1
    assert f"{tmp_path} {fix}" in error_line(capsys, "export")
    with pytest.raises(ModelError, match=re.escape(f"--init-from {tmp_path} {fix}")):
        load_init(tmp_path)


def test_init_from_an_onnx_that_fails_its_sidecar_checksum_is_refused(tmp_path):
    from emotiscope.training.prepare import load_init

    (tmp_path / "m.onnx").write_bytes(b"replaced")
    (tmp_path / "m.onnx.sha256").write_text("0" * 64 + "  m.onnx\n")
    with pytest.raises(ModelError, match="m.onnx fails its checksum"):
        load_init(tmp_path / "m.onnx")


def test_load_checkpoint_says_what_is_missing(tmp_path):
    torch.save({"model": {}, "arch": "compact"}, tmp_path / "x.pt")
    with pytest.raises(ModelError, match=r"no labels, spec\)"):
        load_checkpoint(tmp_path / "x.pt")
    assert load_checkpoint(tmp_path / "x.pt", ("model", "arch"))["arch"] == "compact"


def test_our_own_checkpoints_load_safely(finished_run):
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(finished_run / name, RESUME_KEYS)
        assert ckpt["epoch"] == 1 and ckpt["labels"] == ["happy", "sad"]


def test_resume_of_a_finished_run_does_nothing(finished_run, capsys):
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished_run.iterdir()}
    assert main(["train", "--resume", str(finished_run)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(finished_run)
    assert "already finished at epoch 1/1 and wrote model.onnx; nothing to do" in captured.err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished_run.iterdir()} == before


def _copy_run(finished_run: Path, tmp_path: Path, **config) -> Path:
    """A copy of `finished_run` whose last.pt's config has `config` changed."""
    run = tmp_path / "run"
    run.mkdir()
    for p in finished_run.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    ckpt = load_checkpoint(run / "last.pt", RESUME_KEYS)
    ckpt["config"].update(config)
    torch.save(ckpt, run / "last.pt")
    return run


def test_resume_of_a_finished_quiet_run_still_says_why_it_did_nothing(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path, quiet=True)  # --quiet silences only progress
    assert main(["train", "--resume", str(run)]) == 0
    assert "already finished at epoch 1/1 and wrote model.onnx; nothing to do" in capsys.readouterr().err


def test_resume_after_the_data_moved_says_where_it_was_and_what_to_do(data, tmp_path, capsys):
    moved = tmp_path / "data"
    shutil.copytree(data, moved)
    run = loop.train(config(moved, tmp_path / "runs", batch_size=8))
    shutil.rmtree(moved)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"its data {moved} is gone; put it back there" in err[0]
    assert "--init-from" in err[0] and "last.pt" in err[0]


def test_resume_of_a_run_killed_while_finishing_only_writes_its_results(data, tmp_path):
    run = loop.train(config(data, tmp_path, batch_size=8))
    (run / "model.onnx").unlink()
    (run / "report.json").unlink()
    history = (run / "history.json").read_bytes()
    assert runs.resume(run) == run
    assert (run / "model.onnx").is_file()
    assert json.loads((run / "report.json").read_text())["epochs_run"] == 1
    assert (run / "history.json").read_bytes() == history  # no epoch was trained again


def test_resume_of_an_early_stopped_run_does_nothing(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path, epochs=60, patience=1)  # stopped after epoch 1
    ckpt = load_checkpoint(run / "last.pt", RESUME_KEYS)
    ckpt["best_epoch"] = 0  # without a gain
    torch.save(ckpt, run / "last.pt")
    onnx_before = (run / "model.onnx").stat().st_mtime_ns
    assert main(["train", "--resume", str(run)]) == 0
    assert "already finished at epoch 1/60" in capsys.readouterr().err
    assert (run / "model.onnx").stat().st_mtime_ns == onnx_before


def test_resume_from_another_folder_says_the_data_path_is_relative(tmp_path, monkeypatch):
    """A run trained on `fer.csv` (relative) resumed from elsewhere: not 'gone', elsewhere."""
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data="fer.csv")
    with pytest.raises(ConfigError, match=r"its data fer\.csv is not under .*run --resume from "
                                          r"that folder"):
        runs._check_data_is_there(tmp_path / "run", cfg)


@pytest.mark.parametrize("config", [{"freeze": "features", "init_from": None},
                                    {"freeze": "features", "init_from": "x.pt",
                                     "backbone_lr_scale": 0.1}])
def test_a_run_started_before_the_freeze_refusals_still_resumes(finished_run, tmp_path, config):
    """--freeze without --init-from, or with --backbone-lr-scale, is refused for new runs only:
    a run already trained that way (before the refusal) resumes as it started."""
    run = _copy_run(finished_run, tmp_path, **config)
    _, cfg, _ = runs._load_run(run, {"epochs": 2})
    assert cfg.freeze == "features" and cfg.epochs == 2
