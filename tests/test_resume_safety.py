"""`train --resume` refuses what it cannot continue: changed data, fewer epochs than trained; and
an extended early-stopped run counts its patience from where the extension starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

from fixtures.training import TRAINING_MARKS, config, face_folders  # noqa: E402

from emotiscope.cli import main  # noqa: E402
from emotiscope.errors import ConfigError  # noqa: E402
from emotiscope.training import loop, runs  # noqa: E402

pytestmark = TRAINING_MARKS


def killed_run(data: Path, out: Path, epochs: int = 3, **overrides) -> Path:
    """A run of `epochs` planned on `data`, killed after its first epoch."""
    seen: dict = {}

    def hook(trainer):
        seen["run"] = trainer.run_dir
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.train(config(data, out, epochs=epochs, batch_size=8, **overrides), on_epoch_end=hook)
    return seen["run"]


def edit_checkpoint(path: Path, **changes) -> None:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is None:
            del ckpt[key]
        else:
            ckpt[key] = value
    torch.save(ckpt, path)


@pytest.mark.parametrize("change, fragment", [
    ("more", "trained on 16 faces and validated on 16, now 18 and 16"),
    ("class", "classes were happy, sad, now angry, happy, sad"),
    ("other", "same number of faces, but other images"),
])
def test_resume_refuses_changed_data(tmp_path, capsys, change, fragment):
    data = face_folders(tmp_path / "data")
    run = killed_run(data, tmp_path / "runs")
    if change == "more":
        face_folders(tmp_path / "extra", per_class=10, splits=("train",), seed=1)
        for k in (8, 9):
            (tmp_path / "extra/train/happy" / f"{k}.png").rename(data / "train/happy" / f"{k}.png")
    elif change == "class":
        face_folders(data, classes=("angry",))
    else:
        face_folders(tmp_path / "extra", splits=("train",), seed=1)
        (tmp_path / "extra/train/sad/0.png").replace(data / "train/sad/0.png")
    with pytest.raises(ConfigError, match="data changed") as err:
        runs.resume(run)
    assert fragment in str(err.value) and "--init-from" in str(err.value)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data changed" in err[0]
    assert not (run / "model.onnx").exists()


def test_resume_of_a_checkpoint_without_a_fingerprint_still_works(tmp_path):
    run = killed_run(face_folders(tmp_path / "data"), tmp_path / "runs", epochs=2)
    edit_checkpoint(run / "last.pt", data=None)
    assert runs.resume(run) == run
    assert json.loads((run / "report.json").read_text())["epochs_run"] == 2


def test_resume_refuses_fewer_epochs_than_trained(tmp_path, capsys):
    data = face_folders(tmp_path / "data")
    run = killed_run(data, tmp_path / "runs")
    runs.resume(run, {"epochs": 2})  # one more: fine
    with pytest.raises(ConfigError, match="--epochs 1 is fewer than the 2 epochs it already trained"):
        runs.resume(run, {"epochs": 1})
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fewer than the 2 epochs" in err[0]


def test_extending_an_early_stopped_run_counts_patience_from_the_extension(tmp_path):
    run = killed_run(face_folders(tmp_path / "data"), tmp_path / "runs", epochs=3)
    runs.resume(run)
    # as if it had stopped early: best at epoch 1, no gain since, and none to come
    edit_checkpoint(run / "last.pt", best_epoch=1, best_acc=2.0)
    runs.resume(run, {"epochs": 6, "patience": 2})
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]  # 2 epochs without gain after 3
