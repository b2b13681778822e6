"""The training-side commands through the CLI: `data stats|samples`, `evaluate`, `export`.

In-process via emotiscope.cli.main, plus one subprocess call; tiny random-weight models."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from fixtures.tiny_model import FER_LABELS  # noqa: E402

from emotiscope.classify import EmotionClassifier  # noqa: E402
from emotiscope.cli import main  # noqa: E402
from emotiscope.training import loop  # noqa: E402
from emotiscope.training.config import TrainConfig  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript"),
              pytest.mark.filterwarnings("ignore:The feature will be removed")]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))


def error_line(capsys, command: str) -> str:
    """The one line a failed command prints on stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"emotiscope {command}: error: ")
    return err[0]


def png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    return image


# --- data stats ----------------------------------------------------------------------------------

def test_data_stats_prints_counts_and_writes_the_chart(sample_csv, tmp_path, capsys):
    chart = tmp_path / "charts" / "counts.png"
    assert main(["data", "stats", str(sample_csv), "--out", str(chart)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["class", "train", "val"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip()}
    for name in FER_LABELS:
        assert rows[name] == ["25", "25"]
    assert rows["total"] == ["175", "175"]
    assert rows["chart:"] == [str(chart)]
    assert min(png(chart).shape[:2]) > 100


def test_data_stats_refuses_to_overwrite_without_force(sample_csv, tmp_path, capsys):
    chart = tmp_path / "counts.png"
    chart.write_bytes(b"keep me")
    assert main(["data", "stats", str(sample_csv), "--out", str(chart)]) == 1
    line = error_line(capsys, "data")
    assert str(chart) in line and "already exists" in line and "--force" in line
    assert chart.read_bytes() == b"keep me"
    assert main(["data", "stats", str(sample_csv), "--out", str(chart), "--force"]) == 0
    png(chart)


@pytest.mark.parametrize("verb", ["stats", "samples"])
@pytest.mark.parametrize("name", ["chart", "chart.bmp"])
def test_data_charts_need_a_suffix_matplotlib_writes_checked_first(verb, name, tmp_path, capsys):
    # checked before the data is read: the data path does not even exist
    assert main(["data", verb, str(tmp_path / "nosuch.csv"), "--out", str(tmp_path / name)]) == 1
    line = error_line(capsys, "data")
    assert f"--out {tmp_path / name}:" in line and ".png, .ps" in line and ".bmp," not in line
    assert not any(tmp_path.iterdir())


def test_runs_compare_shows_a_run_still_in_its_first_epoch(tmp_path, capsys):
    settings = {"lr": 0.01, "optimizer": "adamw", "arch": "resnet", "epochs": 5}
    done, starting = tmp_path / "done", tmp_path / "starting"
    for run in (done, starting):
        run.mkdir()
        (run / "config.json").write_text(json.dumps(settings))
    (done / "history.json").write_text(json.dumps([{"epoch": 1, "val_acc": 0.5, "seconds": 3.0}]))
    assert main(["runs", "compare", str(done), str(starting)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "0.5000" in lines[1] and "1/5" in lines[1]
    assert lines[2].split()[1:3] == ["-", "-"] and "0/5" in lines[2] and lines[2].endswith("-")
    assert main(["runs", "compare", str(starting), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["epochs_run"] == 0 and row["best_val_acc"] is None


def test_data_stats_on_a_missing_path(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nosuch.csv"), "--out", str(tmp_path / "c.png")]) == 1
    assert "nosuch.csv does not exist" in error_line(capsys, "data")
    assert not (tmp_path / "c.png").exists()


# --- data samples --------------------------------------------------------------------------------

def test_data_samples_one_class(sample_csv, tmp_path, capsys):
    grid = tmp_path / "happy.png"
    assert main(["data", "samples", str(sample_csv), "--class", "happy", "-n", "3",
                 "--out", str(grid)]) == 0
    assert capsys.readouterr().out.strip() == f"3 faces from train: {grid}"
    png(grid)


def test_data_samples_every_class_and_split(sample_csv, tmp_path, capsys):
    grid = tmp_path / "all.png"
    assert main(["data", "samples", str(sample_csv), "-n", "2", "--split", "val",
                 "--out", str(grid)]) == 0
    assert capsys.readouterr().out.strip() == f"14 faces from val: {grid}"  # 2 x 7 classes
    png(grid)
    assert main(["data", "samples", str(sample_csv), "-n", "2", "--out", str(grid)]) == 1
    assert "already exists" in error_line(capsys, "data")


def test_data_samples_with_n_beyond_the_classes_draws_a_grid_as_wide_as_the_faces(
        sample_csv, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["data", "samples", str(sample_csv), "-n", "5000", "--out", str(grid)]) == 0
    assert png(grid).shape[1] < 5000  # 25 faces a class: 25 columns, not 5000


def test_data_samples_refuses_a_split_without_the_class(sample_csv, tmp_path, capsys):
    lines = sample_csv.read_text().splitlines()
    data = tmp_path / "no_val_disgust.csv"  # disgust is emotion 1
    data.write_text("\n".join(line for line in lines if not (line.startswith("1,")
                                                             and line.endswith(",PublicTest"))))
    out = tmp_path / "grid.png"
    assert main(["data", "samples", str(data), "--split", "val", "--class", "disgust",
                 "--out", str(out)]) == 2
    assert error_line(capsys, "data").endswith(
        "the val split has no disgust faces, so there is nothing to draw; choose --split train")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--class", "bored"], "--class 'bored' is not in the data"),
    (["-n", "0"], "-n 0 must be between 1 and 10000"),
    (["-n", "100000"], "-n 100000 must be between 1 and 10000"),
    (["--split", "test"], "--split 'test' not in"),
])
def test_data_samples_usage_errors_exit_2(sample_csv, tmp_path, capsys, args, fragment):
    out = tmp_path / "grid.png"
    assert main(["data", "samples", str(sample_csv), "--out", str(out), *args]) == 2
    assert fragment in error_line(capsys, "data")
    assert not out.exists()


# --- evaluate ------------------------------------------------------------------------------------

def test_evaluate_json(sample_csv, tiny_model_path, capsys):
    assert main(["evaluate", str(sample_csv), "--model", str(tiny_model_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1
    assert report["split"] == "val" and report["n"] == 175 and report["tta"] == "none"
    assert report["labels"] == list(FER_LABELS)


def test_evaluate_summary_table(sample_csv, tiny_model_path, capsys):
    assert main(["evaluate", str(sample_csv), "--model", str(tiny_model_path),
                 "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "[train]" in out and "macro-F1" in out and "n=175" in out
    assert all(any(line.startswith(name) for line in out.splitlines()) for name in FER_LABELS)


def test_evaluate_classes_predictions_and_mistakes(sample_csv, tmp_path, capsys):
    """A 3-class model on the 7-class data: --classes restricts the data; --predictions writes
    one row per face; --mistakes a grid of the most confident mistakes."""
    from fixtures.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "three.onnx", labels=("happy", "sad", "neutral"))
    base = ["evaluate", str(sample_csv), "--model", str(model)]
    assert main(base + ["--json"]) == 1
    assert "pass --classes" in error_line(capsys, "evaluate")
    pred, grid = tmp_path / "pred.csv", tmp_path / "mistakes.png"
    assert main(base + ["--classes", "happy,sad,neutral", "--json", "--predictions", str(pred),
                        "--mistakes", str(grid)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 75 and report["labels"] == ["happy", "sad", "neutral"]
    rows = list(csv.DictReader(pred.open()))
    assert len(rows) == 75 and list(rows[0]) == ["file", "true", "predicted", "confidence"]
    assert {r["true"] for r in rows} == {"happy", "sad", "neutral"}
    assert sum(r["true"] == r["predicted"] for r in rows) / 75 == pytest.approx(report["accuracy"], abs=1e-4)
    assert all(0 < float(r["confidence"]) <= 1 for r in rows)
    assert min(png(grid).shape[:2]) > 50
    assert main(base + ["--classes", "happy,sad,neutral", "--predictions", str(pred)]) == 1
    assert "already exists" in error_line(capsys, "evaluate")


def test_confident_mistakes_are_ordered_per_true_class():
    from emotiscope.training.mistakes import confident_mistakes

    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    details = {"y_true": np.array([0, 0, 0, 1, 1]), "y_pred": probs.argmax(1), "probs": probs}
    assert confident_mistakes(details, 2, 5)[0] == [2, 1]  # 0.8 before 0.6
    assert confident_mistakes(details, 2, 1)[1] == [3]


def test_data_cache_shows_its_size_and_clears(sample_csv, tmp_path, capsys):
    assert main(["data", "stats", str(sample_csv), "--out", str(tmp_path / "c.png")]) == 0
    capsys.readouterr()
    assert main(["data", "cache"]) == 0
    out = capsys.readouterr().out
    assert "1 cached data set(s)" in out and "MB" in out
    assert main(["data", "cache", "--clear"]) == 0
    assert "cleared 1 cached data set(s)" in capsys.readouterr().out
    assert main(["data", "cache"]) == 0
    assert "0 cached data set(s), 0.0 MB" in capsys.readouterr().out


def test_evaluate_out_writes_files_and_never_overwrites(sample_csv, tiny_model_path, tmp_path,
                                                        capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", str(sample_csv), "--model", str(tiny_model_path), "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads((out / "report.json").read_text()) == printed
    assert min(png(out / "confusion.png").shape[:2]) > 100
    before = {name: (out / name).read_bytes() for name in ("report.json", "confusion.png")}

    assert main(argv + ["--tta", "flip"]) == 1
    assert "report.json already exists" in error_line(capsys, "evaluate")
    assert {name: (out / name).read_bytes() for name in before} == before

    (out / "report.json").unlink()  # the picture alone still blocks
    assert main(argv) == 1
    assert "confusion.png already exists" in error_line(capsys, "evaluate")

    assert main(argv + ["--tta", "flip", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == "flip"
    assert json.loads((out / "report.json").read_text())["tta"] == "flip"


@pytest.mark.parametrize("argv, code, fragment", [
    (["--model", "{tmp}/nosuch.onnx"], 1, "nosuch.onnx does not exist"),
    (["--split", "test", "--model", "{model}"], 2, "--split 'test' not in"),
    (["--faces", "detect", "--model", "{model}"], 2, "--faces detect needs class folders"),
])
def test_evaluate_errors(sample_csv, tiny_model_path, tmp_path, capsys, argv, code, fragment):
    argv = [a.format(tmp=tmp_path, model=tiny_model_path) for a in argv]
    assert main(["evaluate", str(sample_csv), *argv]) == code
    assert fragment in error_line(capsys, "evaluate")


def test_evaluate_bad_tta_is_a_usage_error(sample_csv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(sample_csv), "--tta", "rotate"])
    assert exit_.value.code == 2 and "rotate" in capsys.readouterr().err


def test_evaluate_in_a_subprocess(sample_csv, tiny_model_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "EMOTISCOPE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "emotiscope.cli", "evaluate", str(sample_csv),
                           "--model", str(tiny_model_path), "--tta", "flip", "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tta"] == "flip" and report["n"] == 175 and "macro_f1" in report


# --- export --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(sample_csv, tmp_path_factory) -> Path:
    """A finished one-epoch tiny training run (best.pt, report.json, ...)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        cfg = TrainConfig(data=str(sample_csv), epochs=1, batch_size=32, threads=1,
                          model_args={"widths": [8, 8, 16, 16]},
                          out=str(tmp_path_factory.mktemp("runs")), name="export")
        return loop.train(cfg, command="emotiscope train sample.csv --epochs 1")


def test_export_writes_a_model_with_the_checkpoints_contract(run_dir, tmp_path, capsys):
    out = tmp_path / "exported.onnx"
    assert main(["export", str(run_dir / "best.pt"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "sha256" in printed and "parity" in printed
    ckpt = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    clf = EmotionClassifier(out, threads=1)
    assert list(clf.labels) == ckpt["labels"]
    assert clf.info.spec.to_dict() == ckpt["spec"]
    assert clf.info.sha256 in printed
    meta = clf.info.metadata
    assert meta["training"]["command"] == "emotiscope train sample.csv --epochs 1"
    report = json.loads((run_dir / "report.json").read_text())
    assert meta["metrics"]["validation"]["accuracy"] == report["accuracy"]
    # the same weights as the model the run exported itself
    faces = list(np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8))
    np.testing.assert_allclose(clf.predict_crops(faces),
                               EmotionClassifier(run_dir / "model.onnx", threads=1).predict_crops(faces),
                               atol=1e-5)


def test_export_and_the_run_stamp_the_same_contract(run_dir, tmp_path):
    """One export recipe: `emotiscope export best.pt` writes what the run wrote itself."""
    out = tmp_path / "again.onnx"
    assert main(["export", str(run_dir / "best.pt"), "-o", str(out)]) == 0
    again = EmotionClassifier(out, threads=1).info.metadata
    run = EmotionClassifier(run_dir / "model.onnx", threads=1).info.metadata
    for key in ("labels", "input", "arch", "model_args", "metrics", "temperature", "format"):
        assert again[key] == run[key], key
    assert again["training"]["config"] == run["training"]["config"]
    assert again["training"]["exported_epoch"] == run["training"]["exported_epoch"] == 1


def test_only_the_checkpoint_module_calls_torch_load():
    import emotiscope

    root = Path(emotiscope.__file__).parent
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "torch.load(" in p.read_text())
    assert callers == ["training/checkpoint.py"]


def test_export_stamps_the_metrics_of_the_epoch_it_exports(run_dir, tmp_path, capsys):
    """last.pt of a run whose best epoch came earlier carries its own epoch's validation metrics,
    not best.pt's from report.json."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "report.json").write_bytes((run_dir / "report.json").read_bytes())
    report = json.loads((folder / "report.json").read_text())
    ckpt = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    ckpt["history"] = ckpt["history"] + [{**ckpt["history"][-1], "epoch": 2, "val_acc": 0.0123,
                                          "val_macro_f1": 0.0045}]
    ckpt["epoch"] = 2
    torch.save(ckpt, folder / "last.pt")
    assert main(["export", str(folder / "last.pt")]) == 0
    meta = EmotionClassifier(folder / "last.onnx", threads=1).info.metadata
    assert meta["metrics"]["validation"] == {"accuracy": 0.0123, "macro_f1": 0.0045, "epoch": 2}
    assert meta["training"]["exported_epoch"] == 2 and "temperature" not in meta
    # best.pt: the report's metrics and temperature belong to its epoch
    ckpt = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    torch.save(ckpt, folder / "best.pt")
    assert main(["export", str(folder / "best.pt")]) == 0
    meta = EmotionClassifier(folder / "best.onnx", threads=1).info.metadata
    assert meta["metrics"]["validation"]["accuracy"] == report["accuracy"]
    assert meta["metrics"]["validation"]["epoch"] == report["best_epoch"] == ckpt["epoch"]
    assert meta["temperature"] == report["calibration"]["temperature"]


def test_export_of_best_pt_records_the_epochs_the_run_trained(run_dir, tmp_path):
    """best.pt holds the best epoch; the run went on (history.json beside it says how far)."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    history = json.loads((folder / "history.json").read_text())
    (folder / "history.json").write_text(json.dumps(history + [{**history[0], "epoch": 2, "val_acc": 0.0}]))
    assert main(["export", str(folder / "best.pt")]) == 0
    training = EmotionClassifier(folder / "best.onnx", threads=1).info.metadata["training"]
    assert (training["epochs_run"], training["best_epoch"], training["exported_epoch"]) == (2, 1, 1)
    (tmp_path / "alone").mkdir()  # no run beside it: only its own epoch is known
    shutil.copy(folder / "best.pt", tmp_path / "alone" / "best.pt")
    assert main(["export", str(tmp_path / "alone" / "best.pt")]) == 0
    assert EmotionClassifier(tmp_path / "alone" / "best.onnx", threads=1).info.metadata["training"][
        "epochs_run"] == 1


def test_export_never_overwrites_without_force(run_dir, tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes((run_dir / "best.pt").read_bytes())
    assert main(["export", str(ckpt)]) == 0  # default output: beside the checkpoint
    default = tmp_path / "best.onnx"
    written = default.read_bytes()
    capsys.readouterr()
    assert main(["export", str(ckpt)]) == 1
    assert "best.onnx already exists" in error_line(capsys, "export")
    assert default.read_bytes() == written
    default.write_bytes(b"old")
    assert main(["export", str(ckpt), "--force"]) == 0
    assert EmotionClassifier(default, threads=1).labels == tuple(
        torch.load(ckpt, map_location="cpu", weights_only=True)["labels"])


@pytest.mark.parametrize("name", ["best.pt", "model.PTH", "b.ckpt", "link.onnx"])
def test_export_never_writes_over_its_checkpoint_or_under_a_checkpoint_name(run_dir, tmp_path,
                                                                            capsys, name):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes((run_dir / "best.pt").read_bytes())
    if name == "link.onnx":
        (tmp_path / name).symlink_to("best.pt")
    assert main(["export", str(ckpt), "-o", str(tmp_path / name), "--force"]) == 2
    line = error_line(capsys, "export")
    assert ("would overwrite the input" if name == "link.onnx" else "names a training checkpoint") in line
    assert ckpt.read_bytes() == (run_dir / "best.pt").read_bytes()
    assert sorted(os.listdir(tmp_path)) == sorted({"best.pt", name} - {"model.PTH", "b.ckpt"})


@pytest.mark.parametrize("source", ["best.pt", "model.onnx"])
def test_export_over_a_model_with_a_sidecar_rewrites_the_sidecar(run_dir, tmp_path, capsys, source):
    from emotiscope.model_file import file_sha256

    out, sidecar = tmp_path / "model.onnx", tmp_path / "model.onnx.sha256"
    out.write_bytes(b"the old model")
    sidecar.write_text(f"{file_sha256(out)}  model.onnx\n")
    assert main(["export", str(run_dir / source), "-o", str(out), "--force"]) == 0
    assert f"{sidecar}  updated to the new sha256" in capsys.readouterr().out
    assert sidecar.read_text() == f"{file_sha256(out)}  model.onnx\n"
    assert EmotionClassifier(out, threads=1).info.sha256 == file_sha256(out)  # passes its check
    sidecar.unlink()
    assert main(["export", str(run_dir / source), "-o", str(out), "--force"]) == 0
    assert "updated" not in capsys.readouterr().out and not sidecar.exists()  # none: none made


@pytest.mark.parametrize("content", ["dict", b"", b"just some text\n", b"PK\x03\x04 no zip",
                                     "random"])
def test_export_refuses_a_non_checkpoint(tmp_path, capsys, content):
    junk = tmp_path / "junk.pt"
    if content == "dict":
        torch.save({"weights": 1}, junk)
    elif content == "random":
        junk.write_bytes(np.random.default_rng(2).bytes(512))
    else:
        junk.write_bytes(content)
    assert main(["export", str(junk), "-o", str(tmp_path / "out.onnx")]) == 1
    assert "is not an emotiscope checkpoint" in error_line(capsys, "export")
    assert not (tmp_path / "out.onnx").exists()


def test_export_refuses_an_onnx_model_that_is_not_ours(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    io_ = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 48, 48]) for n in "xy"]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", io_[:1], io_[1:])
    onnx.save(helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    assert main(["export", str(tmp_path / "foreign.onnx"), "-o", str(tmp_path / "out.onnx")]) == 1
    assert "export " + str(tmp_path / "foreign.onnx") + " has no emotiscope metadata" in error_line(
        capsys, "export")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("change", [
    {"model": {"x": torch.zeros(1)}},      # weights of something else
    {"model": None},                       # no weights at all
    {"model_args": {"bogus": 3}},          # arguments the architecture does not take
])
def test_export_refuses_weights_that_do_not_fit(run_dir, tmp_path, capsys, change):
    ckpt = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    ckpt.update(change)
    if change.get("model", 0) is None:
        del ckpt["model"]
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    assert main(["export", str(bad), "-o", str(tmp_path / "out.onnx")]) == 1
    assert "holds no weights that fit its architecture 'compact'" in error_line(capsys, "export")
    assert not (tmp_path / "out.onnx").exists()


def test_export_missing_checkpoint(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nosuch.pt")]) == 1
    assert "nosuch.pt does not exist" in error_line(capsys, "export")


# --- outputs that cannot be written, names that are not UTF-8 ------------------------------------

@pytest.fixture
def faces_data(tmp_path) -> Path:
    from fixtures.training import face_folders

    return face_folders(tmp_path / "data")


@pytest.mark.parametrize("verb", ["data stats", "evaluate", "train"])
def test_an_unwritable_out_is_one_line_before_any_work(verb, faces_data, tiny_model_path,
                                                       tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "sub"
    argv = {"data stats": ["data", "stats", str(faces_data), "--out", str(out / "c.png")],
            "evaluate": ["evaluate", str(faces_data), "--model", str(tiny_model_path),
                         "--out", str(out)],
            "train": ["train", str(faces_data), "--epochs", "1", "--batch-size", "8",
                      "--out", str(out)]}[verb]
    assert main(argv) == 1
    line = error_line(capsys, argv[0])
    assert f"--out {out}" in line and "is a file, not a folder" in line
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("verb", ["data stats", "data samples", "evaluate"])
def test_an_output_onto_the_data_is_refused_even_with_force(verb, faces_data, sample_csv,
                                                            tiny_model_path, tmp_path, capsys):
    photo = faces_data / "train" / "happy" / "0.png"
    data = tmp_path / "a.csv"
    data.write_bytes(sample_csv.read_bytes())
    model = ["--model", str(tiny_model_path)]
    argv = {"data stats": ["data", "stats", str(faces_data), "--out", str(photo)],
            "data samples": ["data", "samples", str(faces_data), "--out", str(photo)],
            "evaluate": ["evaluate", str(data), *model, "--predictions", str(data)]}[verb]
    before = photo.read_bytes(), data.read_bytes()
    assert main([*argv, "--force"]) == 2
    line = error_line(capsys, argv[0])
    assert "lies inside the input folder" in line or "would overwrite the input" in line
    assert (photo.read_bytes(), data.read_bytes()) == before
    assert main(["evaluate", str(faces_data), *model, "--out", str(faces_data / "train" / "e"),
                 "--force"]) == 2  # a class folder "e" would join the data
    assert "lies inside the input folder" in error_line(capsys, "evaluate")


def test_evaluate_mistakes_needs_a_chart_suffix_checked_first(sample_csv, tiny_model_path,
                                                              tmp_path, capsys, monkeypatch):
    import emotiscope.training.evaluate as evaluation

    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated first"))
    assert main(["evaluate", str(sample_csv), "--model", str(tiny_model_path), "--mistakes",
                 str(tmp_path / "m")]) == 1
    assert "--mistakes" in error_line(capsys, "evaluate")


def test_a_write_failing_after_the_work_is_one_line_too(faces_data, tmp_path, capsys, monkeypatch):
    """The folder was writable when checked but the chart cannot be written (disk full...)."""
    import emotiscope.outputs

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emotiscope.outputs.os, "replace", full)
    chart = tmp_path / "charts" / "c.png"
    assert main(["data", "stats", str(faces_data), "--out", str(chart)]) == 1
    assert "cannot write" in error_line(capsys, "data")
    assert os.listdir(chart.parent) == []  # neither the chart nor its temporary file


def test_data_stats_and_train_with_names_that_are_not_utf8(tmp_path):
    from fixtures.training import face_folders

    data = face_folders(os.fsencode(tmp_path / "data"), classes=(b"happy", b"s\xe9d"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONIOENCODING": "utf-8",
           "EMOTISCOPE_CACHE": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "emotiscope.cli"]
    done = subprocess.run([*cli, "data", "stats", os.fsdecode(data), "--out",
                           str(tmp_path / "c.png")], capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert "s\\xe9d" in done.stdout.decode("utf-8")
    done = subprocess.run([*cli, "train", os.fsdecode(data), "--epochs", "1", "--batch-size", "8",
                           "--threads", "1", "--widths", "8,8,16,16", "--depths", "1,1,1,1",
                           "--out", str(tmp_path / "runs")],
                          capture_output=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    run = Path(done.stdout.decode("utf-8").strip())
    assert EmotionClassifier(run / "model.onnx", threads=1).labels == ("happy", "s\\xe9d")
