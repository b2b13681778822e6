"""Fine-tuning on small data: --init-from defaults, --freeze, --backbone-lr-scale, subject-wise
validation splits (--group-by) and the warnings about validation that cannot tell much."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

import cv2  # noqa: E402
from fixtures.training import TRAINING_MARKS, config  # noqa: E402

from emotiscope.cli import build_parser  # noqa: E402
from emotiscope.commands.train import _config  # noqa: E402
from emotiscope.errors import ConfigError  # noqa: E402
from emotiscope.training import loop, prepare  # noqa: E402
from emotiscope.training.optim import make_optimizer  # noqa: E402

pytestmark = TRAINING_MARKS


def subject_folders(root, subjects=("ann", "bob", "cat", "dan", "eve"), classes=("happy", "sad"),
                    per_subject: int = 3, seed: int = 0):
    """root/<class>/<subject>_<k>.png: a few random faces of each subject in each class."""
    rng = np.random.default_rng(seed)
    for cls in classes:
        os.makedirs(root / cls, exist_ok=True)
        for who in subjects:
            for k in range(per_subject):
                face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                cv2.imwrite(str(root / cls / f"{who}_{k}.png"), face)
    return root


def parse(*argv):
    return _config(build_parser().parse_args(["train", *argv]))


def test_init_from_defaults_are_gentle_and_flags_override_them():
    cfg = parse("data/", "--init-from", "model.onnx")
    assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.epochs) == ("adamw", 1e-4, "cosine", 10)
    cfg = parse("data/", "--init-from", "model.onnx", "--lr", "3e-4", "--epochs", "5")
    assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.epochs) == ("adamw", 3e-4, "cosine", 5)
    cfg = parse("data/", "--init-from", "model.onnx", "--optimizer", "sgd")
    assert (cfg.optimizer, cfg.lr) == ("sgd", 0.1)
    cfg = parse("data/")  # training from scratch keeps the FER-2013 recipe
    assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.epochs) == ("sgd", 0.1, "onecycle", 60)


def test_backbone_lr_scale_and_freeze_make_the_groups(tmp_path):
    model, _, _ = prepare.build_initial_model(config("x", tmp_path), ("a", "b"))
    opt, _ = make_optimizer(model, config("x", tmp_path, lr=0.01, backbone_lr_scale=0.1), 10)
    head = {id(p) for p in model.classifier.parameters()}
    for group in opt.param_groups:
        is_head = {id(p) in head for p in group["params"]}
        assert len(is_head) == 1
        assert group["max_lr"] == pytest.approx(0.01 if is_head == {True} else 0.001)
    opt, _ = make_optimizer(model, config("x", tmp_path, freeze="features"), 10)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == head


def test_freeze_features_trains_only_the_head(tmp_path, monkeypatch):
    from emotiscope.training import export

    data = subject_folders(tmp_path / "faces")
    source = loop.train(config(data, tmp_path / "runs", batch_size=8))
    reads: list[Path] = []
    real = export.read_trained
    monkeypatch.setattr(export, "read_trained",
                        lambda path, *a, **k: reads.append(Path(path)) or real(path, *a, **k))
    run = loop.train(config(data, tmp_path / "runs", batch_size=8, init_from=str(source / "best.pt"),
                            freeze="features", lr=0.05))
    assert reads.count(source / "best.pt") == 1  # the --init-from file is read once per run
    before = torch.load(source / "best.pt", weights_only=True)["model"]
    after = torch.load(run / "last.pt", weights_only=True)["model"]
    for key in before:
        same = torch.equal(before[key], after[key])
        assert same == (not key.startswith("classifier.")), key  # BN statistics included


def test_freeze_features_keeps_the_heads_dropout(tmp_path):
    from emotiscope.training.models import build_model

    trainer = loop.Trainer.__new__(loop.Trainer)  # only _train_mode's inputs
    trainer.model = build_model("compact", 3, 1, widths=(8, 8, 8, 8))
    trainer.cfg = config("x", tmp_path, freeze="features")
    trainer._train_mode()
    assert not trainer.model.features.training and trainer.model.dropout.training


def test_group_by_splits_by_subject_and_warns_about_a_tiny_val(tmp_path, caplog):
    data = subject_folders(tmp_path / "faces")
    cfg = config(data, tmp_path / "runs", group_by=r"^([a-z]+)_", val_fraction=0.3, batch_size=8)
    with caplog.at_level(logging.WARNING):
        train, val, source = prepare.prepare_data(cfg)
    who = lambda fs: {os.path.basename(f).split("_")[0] for f in fs.files}  # noqa: E731
    assert who(train) and who(val) and not who(train) & who(val)
    assert len(train) + len(val) == 30 and len(val) >= 9
    assert "--group-by" in source
    assert "only 12 validation faces" in caplog.text or f"only {len(val)} validation faces" in caplog.text
    assert "random split" not in caplog.text


def test_classes_chosen_train_on_a_val_split_without_the_others(tmp_path):
    from fixtures.training import face_folders

    data = face_folders(tmp_path / "faces", classes=("happy", "neutral", "sad"))
    face_folders(data, classes=("disgust",), splits=("train",))  # val/ has no disgust/
    train, val, _ = prepare.prepare_data(config(data, tmp_path, classes=["sad", "happy"], batch_size=8))
    assert train.classes == val.classes == ("sad", "happy") and len(val) == 16


def test_val_csv_without_usage_validates_on_all_its_rows(tmp_path, sample_csv):
    rows = sample_csv.read_text().splitlines()
    mine = tmp_path / "my.csv"
    mine.write_text("\n".join(["emotion,pixels"] + [r.rsplit(",", 1)[0] for r in rows[1:50]]) + "\n")
    train, val, source = prepare.prepare_data(config(sample_csv, tmp_path, val=str(mine)))
    assert len(val) == 49 and source == str(mine)


def test_warnings_for_shared_subjects_and_random_splits(tmp_path, caplog):
    data = subject_folders(tmp_path / "faces")
    other = subject_folders(tmp_path / "other", subjects=("bob", "zed"), seed=1)
    with caplog.at_level(logging.WARNING):
        prepare.prepare_data(config(data, tmp_path, val=str(other), group_by=r"^([a-z]+)_", batch_size=8))
    assert "1 subject(s) are in both training and validation data (e.g. bob)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prepare.prepare_data(config(data, tmp_path, val_fraction=0.2, batch_size=8))
    assert "random split" in caplog.text and "--group-by" in caplog.text


@pytest.mark.parametrize("pattern, fragment", [
    ("[a-z", "is not a regular expression"),
    ("^[a-z]+_", "needs a capture group"),
    (r"^(\d+)_", r"^--group-by '\^\(\\d\+\)_' does not match the file name 'ann_0\.png' \(happy/"),
])
def test_bad_group_by(tmp_path, pattern, fragment):
    data = subject_folders(tmp_path / "faces")
    with pytest.raises(ConfigError, match=fragment):
        loop.train(config(data, tmp_path / "runs", group_by=pattern, batch_size=8))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_group_by_needs_file_names(sample_csv, tmp_path):
    with pytest.raises(ConfigError, match="has no file names"):
        prepare.prepare_data(config(sample_csv, tmp_path, group_by=r"(\d+)"))


def test_val_fraction_holds_out_the_same_faces_for_every_seed(tmp_path):
    """Runs that differ only in --seed are compared and ensembled on one held-out slice."""
    data = subject_folders(tmp_path / "faces", per_subject=4)
    slices = []
    for seed in (0, 1, 7):
        train, val, _ = prepare.prepare_data(config(data, tmp_path, val_fraction=0.25, batch_size=8,
                                                    seed=seed))
        slices.append(sorted(val.images.reshape(len(val), -1).sum(1).tolist()))
        assert len(train) + len(val) == 40
    assert slices[0] == slices[1] == slices[2]


class _Oracle(torch.nn.Module):
    """Knows every face: face k of class c is a flat image of grey 20 + 40 c."""

    def __init__(self, spec, classes: int) -> None:
        super().__init__()
        self.centres = (20 + 40 * torch.arange(classes) - 255 * spec.mean) / (255 * spec.std)

    def forward(self, x):
        return -(x.mean(dim=(1, 2, 3))[:, None] - self.centres[None]) ** 2


@pytest.mark.parametrize("recorded, warns", [(0.4, True), (0.97, False), (None, False)])
def test_a_source_that_already_knows_the_validation_faces_is_flagged(recorded, warns):
    from emotiscope.preprocess import InputSpec
    from emotiscope.training import export
    from emotiscope.training.data import FaceSet

    labels = np.arange(150) % 3
    faces = np.stack([np.full((48, 48), 20 + 40 * c, np.uint8) for c in labels])
    val = FaceSet(faces, labels, ("happy", "neutral", "sad"))
    spec = InputSpec()
    source = export.TrainedModel(prepare.Path("src.pt"), "compact", {}, list(val.classes), spec, {},
                                 accuracy=recorded)
    text = prepare.init_knew_validation(source, _Oracle(spec, 3), val, spec)
    assert (text is not None) == warns
    if warns:
        assert "right on 100.0% of this run's validation faces against 40.0%" in text
    assert prepare.init_knew_validation(source, _Oracle(spec, 3), val.subset(np.arange(50)), spec) is None


def test_too_little_data_says_which_limit_it_hit(tmp_path):
    data = subject_folders(tmp_path / "faces")  # 2 classes x 15 faces
    with pytest.raises(ConfigError, match=r"only 24 training images \(6 more held out.*"
                                          r"at least 32, a quarter of --batch-size 128"):
        prepare.prepare_data(config(data, tmp_path, val_fraction=0.2, batch_size=128))
    one = subject_folders(tmp_path / "one", classes=("happy",))
    with pytest.raises(ConfigError, match=r"only 1 class\(es\) with training images"):
        prepare.prepare_data(config(one, tmp_path, val_fraction=0.2, batch_size=8))
