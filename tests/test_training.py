"""End-to-end training on tiny data: outputs, run folders, resume, export parity, --init-from, CLI."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

import cv2  # noqa: E402
from fixtures.tiny_model import make_tiny_model  # noqa: E402
from fixtures.training import TINY, TRAINING_MARKS, config, face_folders  # noqa: E402

from emotiscope.classify import EmotionClassifier  # noqa: E402
from emotiscope.cli import main  # noqa: E402
from emotiscope.errors import ConfigError, ModelError  # noqa: E402
from emotiscope.preprocess import InputSpec, normalize  # noqa: E402
from emotiscope.training import export, loop, prepare, runs  # noqa: E402
from emotiscope.training.augment import AugmentConfig  # noqa: E402
from emotiscope.training.config import TrainConfig  # noqa: E402
from emotiscope.training.data import load_csv  # noqa: E402
from emotiscope.training.models import build_model  # noqa: E402

OUTPUTS = ("best.pt", "last.pt", "model.onnx", "curves.png", "confusion.png", "history.json", "metrics.csv",
           "config.json", "report.json")
CONV = "features.0.0.weight"  # the first conv of CompactCNN
FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

pytestmark = TRAINING_MARKS


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def torch_model(ckpt: dict):
    model = build_model(ckpt["arch"], len(ckpt["labels"]), 1, **ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


@pytest.fixture(scope="module")
def base_run(sample_csv, tmp_path_factory) -> Path:
    """One finished one-epoch run on the sample CSV, shared by the read-only tests below."""
    return loop.train(config(sample_csv, tmp_path_factory.mktemp("runs"), name="base"),
                      command="emotiscope train sample.csv --epochs 1")


def test_one_epoch_run_writes_every_output(base_run):
    assert sorted(p.name for p in base_run.iterdir()) == sorted(OUTPUTS)
    history = json.loads((base_run / "history.json").read_text())
    assert len(history) == 1 and history[0]["epoch"] == 1
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr"} <= set(history[0])
    cfg = TrainConfig.from_dict(json.loads((base_run / "config.json").read_text()))
    assert cfg.epochs == 1 and cfg.model_args == TINY and cfg.name == "base"
    for png in ("curves.png", "confusion.png"):
        img = cv2.imread(str(base_run / png))
        assert img is not None and min(img.shape[:2]) > 100
    ckpt = load_ckpt(base_run / "best.pt")
    assert ckpt["epoch"] == 1 and ckpt["labels"] == sorted(ckpt["labels"]) and len(ckpt["labels"]) == 7
    assert ckpt["best_acc"] == history[0]["val_acc"]


def test_report_has_metrics_and_export_parity(base_run):
    report = json.loads((base_run / "report.json").read_text())
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1
    assert report["n"] == 175 and report["epochs_run"] == 1
    assert report["export"]["parity_max_abs_diff"] <= export.PARITY_TOL
    assert report["export"]["sha256"] == sha(base_run / "model.onnx")


def test_onnx_loads_in_classifier_with_contract_from_metadata(base_run, sample_csv):
    ckpt = load_ckpt(base_run / "best.pt")
    clf = EmotionClassifier(base_run / "model.onnx", threads=1)
    assert list(clf.labels) == ckpt["labels"]
    assert clf.info.spec == InputSpec.from_dict(ckpt["spec"])
    assert clf.info.spec.margin == pytest.approx(0.15) and clf.info.spec.channels == 1
    meta = clf.info.metadata
    assert meta["arch"] == "compact" and meta["model_args"] == TINY
    assert meta["training"]["command"] == "emotiscope train sample.csv --epochs 1"
    report = json.loads((base_run / "report.json").read_text())
    assert meta["metrics"]["validation"]["accuracy"] == report["accuracy"]
    # Inference preprocessing + ONNX == training normalisation + torch, on real faces.
    faces = load_csv(sample_csv)["val"].images[:16]
    probs = clf.predict_crops(list(faces))
    spec = clf.info.spec
    with torch.no_grad():
        x = normalize(torch.from_numpy(faces).float()[:, None], spec.mean, spec.std)
        ref = torch.softmax(torch_model(ckpt)(x) / clf.info.temperature, 1).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-4)


def test_export_fits_a_temperature_on_the_validation_faces(base_run):
    meta = EmotionClassifier(base_run / "model.onnx").info.metadata
    cal = meta["metrics"]["calibration"]
    assert meta["temperature"] == cal["temperature"] > 0
    assert cal["fitted_on"] == meta["metrics"]["validation"]["source"]
    assert cal["nll_after"] <= cal["nll_before"] + 1e-6  # the fit minimises the NLL
    report = json.loads((base_run / "report.json").read_text())
    assert report["calibration"] == cal
    free = report["duplicate_free"]  # the validation faces without twins among the training faces
    assert free["n"] + free["excluded"] == report["n"] and 0 <= free["accuracy"] <= 1


def test_parity_check_passes_and_catches_a_mismatch(base_run):
    ckpt = load_ckpt(base_run / "best.pt")
    model, spec = torch_model(ckpt), InputSpec.from_dict(ckpt["spec"])
    assert export.parity_check(model, base_run / "model.onnx", spec) <= export.PARITY_TOL
    with torch.no_grad():
        model.classifier.bias += 0.01
    with pytest.raises(ModelError, match="differs from torch"):
        export.parity_check(model, base_run / "model.onnx", spec)


def test_second_run_never_overwrites_the_first(base_run, sample_csv):
    before = {name: sha(base_run / name) for name in OUTPUTS}
    second = loop.train(config(sample_csv, base_run.parent, name="base", seed=1))
    assert second != base_run and second.parent == base_run.parent
    assert {name: sha(base_run / name) for name in OUTPUTS} == before
    assert (second / "model.onnx").is_file()


def test_new_run_dir_adds_a_suffix_within_the_same_second(tmp_path, monkeypatch):
    frozen = datetime.datetime(2024, 1, 2, 3, 4, 5)
    monkeypatch.setattr(prepare, "dt", SimpleNamespace(
        datetime=SimpleNamespace(now=lambda: frozen)))
    first = prepare.new_run_dir(tmp_path, "x")
    (first / "keep.txt").write_text("mine")
    names = [first.name] + [prepare.new_run_dir(tmp_path, "x").name for _ in range(2)]
    assert names == ["20240102-030405-x", "20240102-030405-x-2", "20240102-030405-x-3"]
    assert (first / "keep.txt").read_text() == "mine"


def interrupt_after(epoch: int, seen: dict):
    def hook(trainer):
        seen["run_dir"] = trainer.run_dir
        if trainer.epoch == epoch:
            raise KeyboardInterrupt
    return hook


def test_resume_finishes_an_interrupted_run(sample_csv, tmp_path):
    seen: dict = {}
    with pytest.raises(KeyboardInterrupt):
        loop.train(config(sample_csv, tmp_path, epochs=2), on_epoch_end=interrupt_after(1, seen))
    run_dir = seen["run_dir"]
    first = json.loads((run_dir / "history.json").read_text())
    assert len(first) == 1 and not (run_dir / "model.onnx").exists()
    assert load_ckpt(run_dir / "last.pt")["epoch"] == 1

    assert runs.resume(run_dir) == run_dir
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0] == first[0]
    assert load_ckpt(run_dir / "last.pt")["epoch"] == 2
    assert json.loads((run_dir / "report.json").read_text())["epochs_run"] == 2
    assert all((run_dir / name).is_file() for name in OUTPUTS)
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]  # resumed in place


def test_resume_matches_an_uninterrupted_run(sample_csv, tmp_path):
    straight = loop.train(config(sample_csv, tmp_path / "a", epochs=2))
    seen: dict = {}
    with pytest.raises(KeyboardInterrupt):
        loop.train(config(sample_csv, tmp_path / "b", epochs=2), on_epoch_end=interrupt_after(1, seen))
    resumed = runs.resume(seen["run_dir"])
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    read = lambda d: drop_time(json.loads((d / "history.json").read_text()))  # noqa: E731
    assert read(resumed) == read(straight)


def test_resume_extends_a_finished_run_from_another_folder(sample_csv, tmp_path, monkeypatch):
    """A 1-epoch run resumed with --epochs 2 runs exactly one more epoch, on a learning-rate
    schedule rebuilt for 2 epochs; the data path is stored absolute, so any folder works."""
    (tmp_path / "here").mkdir()
    (tmp_path / "data.csv").write_bytes(sample_csv.read_bytes())
    monkeypatch.chdir(tmp_path / "here")
    run_dir = loop.train(config("../data.csv", tmp_path / "runs", schedule="cosine"))
    assert json.loads((run_dir / "config.json").read_text())["data"] == str(tmp_path / "data.csv")
    before = load_ckpt(run_dir / "last.pt")
    assert before["history"][-1]["lr"] == 0  # the 1-epoch cosine ended at zero
    monkeypatch.chdir(tmp_path)
    assert runs.resume(run_dir, {"epochs": 2}) == run_dir
    after = load_ckpt(run_dir / "last.pt")
    assert [row["epoch"] for row in after["history"]] == [1, 2]
    assert after["history"][0] == before["history"][0]
    assert not torch.equal(after["model"][CONV], before["model"][CONV])  # the lr was not zero
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2
    assert json.loads((run_dir / "report.json").read_text())["epochs_run"] == 2
    assert len(json.loads((run_dir / "history.json").read_text())) == 2
    runs.resume(run_dir, {"epochs": 2})  # nothing more to do
    assert load_ckpt(run_dir / "last.pt")["epoch"] == 2


def test_resume_refuses_flags_that_would_change_the_run(base_run, tmp_path, capsys):
    before = sha(base_run / "last.pt")
    assert main(["train", "--resume", str(base_run), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lr cannot change" in err[0] and "--epochs" in err[0]
    assert main(["train", str(base_run.parent), "--resume", str(base_run)]) == 2
    assert "DATA cannot change" in capsys.readouterr().err
    assert sha(base_run / "last.pt") == before


def test_resume_without_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no last.pt"):
        runs.resume(tmp_path)


@pytest.mark.parametrize("source", ["best.pt", "model.onnx"])
def test_init_from_copies_weights_and_resets_the_head(base_run, sample_csv, source):
    src = load_ckpt(base_run / "best.pt")  # model.onnx holds the same (best) weights
    cfg = config(sample_csv, base_run.parent, arch="resnet", model_args={},
                 init_from=str(base_run / source), classes=["happy", "sad"])
    model, args, source = prepare.build_initial_model(cfg, ("happy", "sad"))
    state = model.state_dict()
    assert cfg.arch == "compact" and args == TINY  # architecture comes from the source
    assert source.spec.mean == src["spec"]["mean"]  # normalisation comes from the source too
    torch.testing.assert_close(state[CONV], src["model"][CONV], rtol=0, atol=0)
    torch.testing.assert_close(state["features.0.1.running_mean"],
                               src["model"]["features.0.1.running_mean"], rtol=0, atol=0)
    assert state["classifier.weight"].shape == (2, 16)  # a head for 2 classes...
    for i, name in enumerate(("happy", "sad")):  # ...whose rows are the source's, by label name
        j = src["labels"].index(name)
        torch.testing.assert_close(state["classifier.weight"][i], src["model"]["classifier.weight"][j])
        torch.testing.assert_close(state["classifier.bias"][i], src["model"]["classifier.bias"][j])


def test_init_from_maps_head_rows_by_label_name_in_any_folder_order(tmp_path):
    """A happy/sad/neutral model fine-tuned on folders that sort neutral before sad keeps each
    label's output row; a label the source never saw gets a fresh row."""
    data = face_folders(tmp_path / "faces", classes=("happy", "neutral", "sad"), per_class=6)
    source_run = loop.train(config(data, tmp_path / "runs", classes=["happy", "sad", "neutral"],
                                   batch_size=8))
    src = load_ckpt(source_run / "best.pt")
    assert src["labels"] == ["happy", "sad", "neutral"]
    target = ("happy", "neutral", "sad", "surprise")  # the order a plain folder tree gives
    cfg = config(data, tmp_path / "runs", init_from=str(source_run / "model.onnx"))
    model, _, _ = prepare.build_initial_model(cfg, target)
    w, b = model.state_dict()["classifier.weight"], model.state_dict()["classifier.bias"]
    for i, name in enumerate(target[:3]):
        j = src["labels"].index(name)
        torch.testing.assert_close(w[i], src["model"]["classifier.weight"][j], rtol=0, atol=0)
        torch.testing.assert_close(b[i], src["model"]["classifier.bias"][j], rtol=0, atol=0)
    assert not any(torch.equal(w[3], row) for row in src["model"]["classifier.weight"])

    # end to end: fine-tuned on the folder order, each label's row still starts from the source
    run = loop.train(config(data, tmp_path / "runs", init_from=str(source_run / "best.pt"),
                            batch_size=8, lr=1e-9, optimizer="sgd", schedule="constant",
                            augment=AugmentConfig(0, 0, 0, 0, 0, 0, 0)))
    tuned = load_ckpt(run / "last.pt")
    assert tuned["labels"] == ["happy", "neutral", "sad"]
    for i, name in enumerate(tuned["labels"]):
        j = src["labels"].index(name)
        torch.testing.assert_close(tuned["model"]["classifier.weight"][i],
                                   src["model"]["classifier.weight"][j], rtol=0, atol=1e-6)


def test_init_from_onnx_fine_tunes_on_a_class_subset(base_run, sample_csv, tmp_path):
    cfg = config(sample_csv, tmp_path, arch="resnet", model_args={},
                 init_from=str(base_run / "model.onnx"), classes=["happy", "sad"], epochs=2)
    seen: dict = {}
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg, on_epoch_end=interrupt_after(1, seen))
    run_dir = runs.resume(seen["run_dir"])  # the run must rebuild the source's architecture
    clf = EmotionClassifier(run_dir / "model.onnx", threads=1)
    assert clf.labels == ("happy", "sad")
    assert clf.info.metadata["model_args"] == TINY
    source = EmotionClassifier(base_run / "model.onnx", threads=1).info.spec
    assert (clf.info.spec.mean, clf.info.spec.std) == (source.mean, source.std)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["arch"] == "compact" and saved["model_args"] == TINY
    assert saved["classes"] == ["happy", "sad"] and run_dir.name.endswith("-compact")


def test_init_from_bad_sources(tmp_path, sample_csv, tiny_model_path):
    cfg = config(sample_csv, tmp_path, init_from=str(tmp_path / "nosuch.pt"))
    with pytest.raises(ConfigError, match="nosuch.pt does not exist"):
        prepare.build_initial_model(cfg, FER)
    junk = tmp_path / "junk.pt"
    torch.save({"weights": 1}, junk)
    with pytest.raises(ModelError, match="not an emotiscope checkpoint"):
        prepare.build_initial_model(config(sample_csv, tmp_path, init_from=str(junk)), FER)
    for garbage in (b"", b"not a checkpoint", b"PK\x03\x04 not a zip either"):
        junk.write_bytes(garbage)
        with pytest.raises(ModelError, match="not an emotiscope checkpoint"):
            prepare.build_initial_model(config(sample_csv, tmp_path, init_from=str(junk)), FER)
    with pytest.raises(ConfigError, match="unknown architecture 'tiny-test'"):
        prepare.build_initial_model(config(sample_csv, tmp_path, init_from=str(tiny_model_path)), FER)
    no_arch = make_tiny_model(tmp_path / "no_arch.onnx", metadata={
        "labels": ["a", "b"], "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25}})
    with pytest.raises(ModelError, match="no 'arch'"):
        prepare.build_initial_model(config(sample_csv, tmp_path, init_from=str(no_arch)), FER)


# --- the CLI, in-process -------------------------------------------------------------------------

def test_cli_train_prints_the_run_dir(sample_csv, tmp_path, capsys):
    code = main(["train", str(sample_csv), "--epochs", "1", "--batch-size", "16", "--threads", "1",
                 "--classes", "happy,sad", "--out", str(tmp_path), "--name", "cli"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    run_dir = Path(out[-1])
    assert run_dir.parent == tmp_path and run_dir.name.endswith("-cli")
    assert all((run_dir / name).is_file() for name in OUTPUTS)
    assert EmotionClassifier(run_dir / "model.onnx", threads=1).labels == ("happy", "sad")


@pytest.mark.parametrize("args, code, fragment", [
    (["--epochs", "0"], 2, "--epochs 0 must be at least 1"),
    (["--classes", "happy,nosuch"], 2, "nosuch"),
    (["--balance", "most"], 2, "--balance 'most'"),
    (["--val-fraction", "1.5"], 2, "--val-fraction 1.5"),
    (["--arch", "vgg99"], 2, "unknown architecture 'vgg99'"),
    (["--init-from", "nosuch.onnx"], 2, "nosuch.onnx does not exist"),
    (["--device", "mps"], 2, "--device 'mps' is not supported; use auto, cpu, cuda or cuda:N"),
    (["--device", "gpu"], 2, "--device 'gpu' is not supported"),
    (["--augment", "flip=2"], 2, "--augment flip=2 is out of range; use 0 to 1"),
    (["--augment", "rotate=400"], 2, "--augment rotate=400 is out of range; use 0 to 180"),
    (["--val", "x.csv", "--val-fraction", "0.2"], 2, "--val and --val-fraction both choose"),
    (["--freeze", "features", "--backbone-lr-scale", "2"], 2, "--backbone-lr-scale 2 must be in (0, 1]"),
    (["--freeze", "features"], 2, "--freeze features keeps the backbone as it starts, random without"),
    (["--name", "../mine"], 2, "--name '../mine' names the run's folder inside --out; drop the /"),
])
def test_cli_train_bad_options(sample_csv, tmp_path, capsys, args, code, fragment):
    assert main(["train", str(sample_csv), "--out", str(tmp_path), *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emotiscope train: error:") and fragment in err[0]
    assert not any(tmp_path.iterdir()), "a failed start left a run folder behind"


def test_cli_train_freeze_with_a_backbone_lr_scale_is_one_line(sample_csv, tiny_model_path, tmp_path, capsys):
    args = ["--init-from", str(tiny_model_path), "--freeze", "features", "--backbone-lr-scale", "0.1"]
    assert main(["train", str(sample_csv), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["emotiscope train: error: --freeze features keeps the backbone still, so "
                   "--backbone-lr-scale 0.1 would do nothing; pass only one of them"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, code, fragment", [
    (["train", "{tmp}/nosuch.csv"], 1, "nosuch.csv does not exist"),
    (["train"], 2, "train needs DATA"),
    (["train", "--resume", "{tmp}"], 2, "no last.pt"),
])
def test_cli_train_missing_inputs(tmp_path, capsys, argv, code, fragment):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--out", str(tmp_path / "runs")]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emotiscope train: error:") and fragment in err[0]


def test_cli_rejects_an_unknown_optimizer(sample_csv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(sample_csv), "--optimizer", "rmsprop"])
    assert exit_.value.code == 2
    assert "rmsprop" in capsys.readouterr().err


def test_validation_faces_that_all_have_a_training_twin_have_no_duplicate_free_accuracy(tmp_path):
    data = face_folders(tmp_path / "data", splits=("train",))
    run = loop.train(config(data, tmp_path / "runs", batch_size=8, val=str(data / "train")))

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    history = json.loads((run / "history.json").read_text(), parse_constant=refuse)
    assert history[0]["val_acc_dup_free"] is None
    free = json.loads((run / "report.json").read_text(), parse_constant=refuse)["duplicate_free"]
    assert (free["accuracy"], free["macro_f1"], free["n"], free["excluded"]) == (None, None, 0, 16)


def test_a_one_row_csv_says_its_row_went_to_validation(sample_csv, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("".join(sample_csv.read_text().splitlines(keepends=True)[:2]))
    assert one.read_text().rstrip().endswith(",Training")
    with pytest.raises(ConfigError, match=r"only 0 class\(es\) with training images \(0 image\(s\)\); "
                       r"1 image\(s\) went to validation: 10% of .*one\.csv held out .*; need at least "
                       r"2 classes with images: add images, or validate on other data with --val$"):
        prepare.prepare_data(config(one, tmp_path))
