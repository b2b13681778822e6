"""Knowledge distillation from a teacher ONNX model, weight averaging (--ema) and --augment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

from fixtures.tiny_model import FER_LABELS, make_tiny_model  # noqa: E402
from fixtures.training import TRAINING_MARKS, config  # noqa: E402

from emotiscope.classify import EmotionClassifier  # noqa: E402
from emotiscope.cli import main  # noqa: E402
from emotiscope.errors import ConfigError  # noqa: E402
from emotiscope.training import loop, runs  # noqa: E402
from emotiscope.training.augment import AugmentConfig  # noqa: E402
from emotiscope.training.data import FaceSet, load_csv  # noqa: E402
from emotiscope.training.distill import soft_cross_entropy, teacher_targets  # noqa: E402
from emotiscope.training.evaluate import predict_faces  # noqa: E402

pytestmark = TRAINING_MARKS


def faces(n: int = 12, classes=("happy", "sad", "angry"), seed: int = 0) -> FaceSet:
    rng = np.random.default_rng(seed)
    return FaceSet(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
                   np.arange(n) % len(classes), tuple(classes))


def test_teacher_targets_follow_the_data_class_order(tiny_model_path):
    fs = faces()
    targets = teacher_targets(tiny_model_path, fs, "flip")
    assert targets.shape == (12, 3) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-5)
    full = predict_faces(EmotionClassifier(tiny_model_path, threads=1), fs.images, "flip")
    cols = [FER_LABELS.index(c) for c in fs.classes]
    expected = full[:, cols] / full[:, cols].sum(1, keepdims=True)
    np.testing.assert_allclose(targets, expected, rtol=1e-5)
    assert not np.allclose(targets, teacher_targets(tiny_model_path, fs, "none"))  # views count


@pytest.mark.parametrize("make, fs, fragment", [
    (lambda d: d / "teacher.h5", faces(), "pass an .onnx model of ours or a .pt checkpoint"),
    (lambda d: make_tiny_model(d / "small.onnx", size=32), faces(), "takes 32px faces"),
    (lambda d: make_tiny_model(d / "ab.onnx", labels=("a", "b")), faces(), "no label for happy"),
])
def test_teacher_mismatches_are_config_errors(tmp_path, make, fs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        teacher_targets(make(tmp_path), fs, "none")


def test_a_checkpoint_teacher_matches_its_onnx_export_and_teachers_average(sample_csv, tmp_path,
                                                                            tiny_model_path):
    run = loop.train(config(sample_csv, tmp_path / "t", epochs=1))
    fs = faces(classes=("happy", "sad", "angry", "neutral"))
    from_pt = teacher_targets(str(run / "best.pt"), fs, "flip")
    exported = EmotionClassifier(run / "model.onnx", threads=1)
    raw = predict_faces(exported, fs.images, "flip", temperature=1.0)  # checkpoints carry no temperature
    labels = list(exported.labels)
    cols = [labels.index(c) for c in fs.classes]
    np.testing.assert_allclose(from_pt, raw[:, cols] / raw[:, cols].sum(1, keepdims=True), atol=1e-4)
    # on the CPU a checkpoint runs in ONNX Runtime; torch (a GPU's path) gives the same targets
    from emotiscope.training.distill import _torch_teacher
    np.testing.assert_allclose(_torch_teacher(run / "best.pt", fs, "flip", "cpu"), from_pt, atol=1e-4)
    both = teacher_targets(f"{run / 'best.pt'}, {tiny_model_path}", fs, "flip")
    np.testing.assert_allclose(both, (from_pt + teacher_targets(tiny_model_path, fs, "flip")) / 2, atol=1e-6)


def test_a_consistent_teacher_judges_faces_as_the_targets_do(sample_csv, tmp_path, tiny_model_path):
    """Without augmentation the per-step teacher gives the targets computed before training, in
    the data's class order: a .pt and our exported .onnx (both in torch, the .onnx with its
    temperature), a hand-built .onnx (ONNX Runtime) and two teachers averaged."""
    from emotiscope.training.distill import ConsistentTeacher

    run = loop.train(config(sample_csv, tmp_path / "t", epochs=1))
    fs = faces(classes=("sad", "happy", "neutral"))
    raw = torch.from_numpy(fs.images).float()[:, None]
    ours = run / "model.onnx"  # rebuilt in torch, its temperature kept
    assert EmotionClassifier(ours).info.temperature != 1.0
    both = f"{run / 'best.pt'},{tiny_model_path}"
    for spec in (str(tiny_model_path), str(run / "best.pt"), str(ours), both):
        got = ConsistentTeacher(spec, fs, "cpu", amp=False)(raw)
        assert got.shape == (12, 3)
        np.testing.assert_allclose(got.numpy(), teacher_targets(spec, fs, "none"), atol=1e-4)


def test_our_onnx_models_rebuild_in_torch_and_others_do_not(sample_csv, tmp_path, tiny_model_path):
    from emotiscope.training.checkpoint import model_from_onnx

    run = loop.train(config(sample_csv, tmp_path / "t", epochs=1))
    assert isinstance(model_from_onnx(EmotionClassifier(run / "model.onnx")), torch.nn.Module)
    assert model_from_onnx(EmotionClassifier(tiny_model_path)) is None  # a hand-built graph
    ensemble = tmp_path / "two.onnx"
    assert main(["export", str(run / "best.pt"), str(run / "model.onnx"), "-o", str(ensemble)]) == 0
    assert model_from_onnx(EmotionClassifier(ensemble)) is None


def test_a_consistent_teacher_sees_the_students_augmented_faces(sample_csv, tmp_path, tiny_model_path,
                                                                 monkeypatch):
    from emotiscope.training import distill

    seen = []
    real = distill.ConsistentTeacher.__call__
    monkeypatch.setattr(distill.ConsistentTeacher, "__call__",
                        lambda self, raw, idx: seen.append(raw.clone()) or real(self, raw, idx))
    students = []  # the batches the student trains on
    cfg = config(sample_csv, tmp_path / "runs", epochs=1, distill=str(tiny_model_path),
                 distill_tta="augmented")
    trainer = loop.Trainer(cfg.validate(), "test")
    monkeypatch.setattr(trainer, "net", lambda x: students.append(x.clone()) or trainer.model(x))
    trainer.fit()
    assert len(seen) == len(students) == trainer.steps_per_epoch
    assert not (trainer.run_dir / distill.TARGETS_FILE).exists()  # nothing computed before training
    for raw, x in zip(seen, students, strict=True):
        torch.testing.assert_close(trainer._normalized(raw), x)  # the very faces the student saw
    # augmented: no face of the first batch is a training face as stored
    gap = (seen[0][:, 0].flatten(1)[:, None] - trainer.x_train.float().flatten(1)[None]).abs().amax(2)
    assert (gap.amin(1) > 0).all()


def test_soft_cross_entropy_is_the_hard_loss_for_one_hot_targets():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 6, 2, 1])
    hard = torch.nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(soft_cross_entropy(logits, torch.eye(7)[y]), hard)


@pytest.mark.parametrize("views", ["multicrop", "augmented"])
def test_distilled_run_learns_from_the_teacher(sample_csv, tmp_path, tiny_model_path, views):
    """With the full weight on the teacher, the student's predictions move towards the teacher's
    (random) judgement and away from what the labels alone teach."""
    runs = {w: loop.train(config(sample_csv, tmp_path / str(w), epochs=6, distill=str(tiny_model_path),
                                 distill_weight=w, lr=0.05, label_smoothing=0.0, distill_tta=views))
            for w in (0.0, 1.0)}
    val = load_csv(sample_csv, 48)["val"]
    teacher = predict_faces(EmotionClassifier(tiny_model_path, threads=1), val.images, "multicrop")
    agree = {w: float((predict_faces(EmotionClassifier(d / "model.onnx", threads=1), val.images)
                       .argmax(1) == teacher.argmax(1)).mean()) for w, d in runs.items()}
    assert agree[1.0] > agree[0.0] + 0.1, agree
    saved = json.loads((runs[1.0] / "config.json").read_text())
    assert saved["distill"] == str(tiny_model_path) and saved["distill_tta"] == views


def test_ema_checkpoints_the_average_and_resumes_exactly(sample_csv, tmp_path):
    straight = loop.train(config(sample_csv, tmp_path / "a", epochs=2, ema=0.9))
    ckpt = torch.load(straight / "last.pt", map_location="cpu", weights_only=False)
    conv = "features.0.0.weight"
    assert not torch.equal(ckpt["model"][conv], ckpt["live"][conv])  # the average, not the live weights
    torch.testing.assert_close(ckpt["model"][conv], ckpt["average"]["module." + conv])
    seen: dict = {}

    def stop(trainer):
        seen["run_dir"] = trainer.run_dir
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.train(config(sample_csv, tmp_path / "b", epochs=2, ema=0.9), on_epoch_end=stop)
    resumed = runs.resume(seen["run_dir"])
    read = lambda d: [{k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
                      for r in json.loads((d / "history.json").read_text())]
    assert read(resumed) == read(straight)


def test_cli_augment_settings_reach_the_config(sample_csv, tmp_path, capsys):
    code = main(["train", str(sample_csv), "--epochs", "1", "--batch-size", "32", "--threads", "1",
                 "--augment", "erase=0.25, rotate=10,crop-pad=2", "--out", str(tmp_path)])
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    saved = json.loads((run_dir / "config.json").read_text())["augment"]
    assert saved == {**AugmentConfig().__dict__, "erase": 0.25, "rotate": 10.0, "crop_pad": 2}


@pytest.mark.parametrize("args, fragment", [
    (["--augment", "sharpen=1"], "'sharpen=1': unknown key"),
    (["--augment", "erase=lots"], "'lots' is not a float"),
    (["--augment", "rotate=-5"], "out of range"),
    (["--distill-weight", "1.5"], "--distill-weight 1.5 must be in [0, 1]"),
    (["--ema", "1"], "--ema 1.0 must be in [0, 1)"),
    (["--distill", "nosuch.bin"], "pass an .onnx model"),
])
def test_cli_bad_distill_and_augment_options(sample_csv, tmp_path, capsys, args, fragment):
    assert main(["train", str(sample_csv), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emotiscope train: error:") and fragment in err[0]
    assert not any(tmp_path.iterdir()), "a failed start left a run folder behind"


def test_cli_widths_and_depths_build_that_network(sample_csv, tmp_path, capsys):
    code = main(["train", str(sample_csv), "--epochs", "1", "--batch-size", "32", "--threads", "1",
                 "--widths", "8,12,16", "--depths", "1,1,2", "--out", str(tmp_path)])
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert json.loads((run_dir / "config.json").read_text())["model_args"] == {
        "widths": [8, 12, 16], "depths": [1, 1, 2]}
    state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["model"]
    convs = [v.shape[0] for k, v in state.items() if k.startswith("features.") and k.endswith("0.weight")
             and v.ndim == 4]
    assert convs == [8, 12, 16, 16]


@pytest.mark.parametrize("args, fragment", [
    (["--widths", "8,x"], "comma-separated whole numbers"),
    (["--widths", "8,0,8,8"], "at least 1"),
    (["--widths", "8,8,8"], "must give 4 stages"),
    (["--widths", "8,8,8", "--depths", "1,1"], "the same number of stages"),
])
def test_cli_bad_widths_and_depths(sample_csv, tmp_path, capsys, args, fragment):
    assert main(["train", str(sample_csv), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not any(tmp_path.iterdir())


def test_resume_reads_the_teachers_targets_back_from_the_run(sample_csv, tmp_path, tiny_model_path,
                                                             monkeypatch):
    import shutil

    from emotiscope.training import distill
    teacher = tmp_path / "teacher.onnx"
    shutil.copy(tiny_model_path, teacher)
    run = loop.train(config(sample_csv, tmp_path / "runs", epochs=1, distill=str(teacher),
                            distill_tta="none"))
    assert (run / distill.TARGETS_FILE).is_file()
    computed = []
    real = distill.teacher_targets
    monkeypatch.setattr(distill, "teacher_targets", lambda *a: computed.append(1) or real(*a))
    runs.resume(run, {"epochs": 2})
    assert computed == []  # read back, not computed again
    make_tiny_model(teacher, seed=5)  # the same file name, another teacher
    runs.resume(run, {"epochs": 3})
    assert computed == [1]
