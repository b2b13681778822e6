"""`emotiscope export A B C -o out.onnx`: several trained models as one ensemble model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

from fixtures.training import TINY, TRAINING_MARKS, config  # noqa: E402

from emotiscope.classify import EmotionClassifier  # noqa: E402
from emotiscope.cli import main  # noqa: E402
from emotiscope.preprocess import InputSpec, normalize  # noqa: E402
from emotiscope.training import loop  # noqa: E402
from emotiscope.training.ensemble import Member, build_ensemble  # noqa: E402
from emotiscope.training.models import build_model, count_macs  # noqa: E402

pytestmark = TRAINING_MARKS


@pytest.fixture(scope="module")
def runs(sample_csv, tmp_path_factory) -> list[Path]:
    """Two tiny one-epoch runs that differ only in --seed, holding out 30 % of the training rows."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTISCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        return [loop.train(config(sample_csv, out, seed=seed, val_fraction=0.3, crop_margin=0.0,
                                  name=f"seed{seed}"), command=f"train --seed {seed}")
                for seed in (0, 1)]


def faces(n: int = 6) -> list[np.ndarray]:
    return list(np.random.default_rng(3).integers(0, 256, (n, 48, 48), dtype=np.uint8))


def test_an_ensemble_averages_its_members_probabilities(runs, tmp_path, capsys):
    out = tmp_path / "ensemble.onnx"
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "best.pt"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and "temperature" in printed
    ens = EmotionClassifier(out, threads=1)
    members = [EmotionClassifier(r / "model.onnx", threads=1) for r in runs]
    # each member at its own calibration temperature, the mean re-calibrated at the ensemble's
    mean = np.mean([m.predict_crops(faces()) for m in members], axis=0)
    t = ens.info.temperature
    expected = np.exp(np.log(mean) / t)
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(ens.predict_crops(faces()), expected, atol=1e-4)
    assert list(ens.labels) == list(members[0].labels)


def test_the_ensemble_is_validated_and_calibrated_on_the_shared_held_out_slice(runs, tmp_path, capsys):
    out = tmp_path / "ensemble.onnx"
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "best.pt"), "-o", str(out)]) == 0
    meta = EmotionClassifier(out, threads=1).info.metadata
    held_out = json.loads((runs[0] / "report.json").read_text())["n"]
    assert held_out == json.loads((runs[1] / "report.json").read_text())["n"]  # the same slice
    assert meta["metrics"]["validation"]["n"] == held_out
    assert meta["metrics"]["calibration"]["temperature"] == meta["temperature"]
    assert meta["arch"] == "ensemble" and len(meta["model_args"]["members"]) == 2
    assert [m["command"] for m in meta["training"]["members"]] == ["train --seed 0", "train --seed 1"]
    one = build_model("compact", 7, 1, **TINY)
    assert meta["metrics"]["macs"] == 2 * count_macs(one)


def test_an_onnx_member_makes_an_uncalibrated_ensemble_and_says_why(runs, tmp_path, capsys):
    out = tmp_path / "mixed.onnx"
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "model.onnx"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "not validated and not calibrated" in captured.err
    meta = EmotionClassifier(out, threads=1).info.metadata
    assert meta["temperature"] == 1.0 and "validation" not in meta["metrics"]


def test_a_member_with_flip_adds_its_mirror_view_and_val_gives_metrics(runs, sample_csv, tmp_path, capsys):
    out = tmp_path / "views.onnx"
    assert main(["export", str(runs[0] / "model.onnx"), str(runs[1] / "best.pt"), "--member-tta",
                 "flip,none", "--val", str(sample_csv), "-o", str(out)]) == 0
    assert "validated on" in capsys.readouterr().err
    ens = EmotionClassifier(out, threads=1)
    a, b = (EmotionClassifier(r / "model.onnx", threads=1) for r in runs)
    mirrored = [f[:, ::-1].copy() for f in faces()]
    views = [a.predict_crops(faces()), a.predict_crops(mirrored), b.predict_crops(faces())]
    np.testing.assert_allclose(ens.predict_crops(faces()), np.mean(views, axis=0), atol=1e-4)
    meta = ens.info.metadata
    assert meta["temperature"] == 1.0 and "calibration" not in meta["metrics"]  # not fitted on val
    validation = meta["metrics"]["validation"]
    assert validation["n"] == 175 and validation["source"].endswith("val split")
    assert 0 <= validation["ece"] <= 1
    assert [m["tta"] for m in meta["model_args"]["members"]] == ["flip", "none"]
    one = count_macs(build_model("compact", 7, 1, **TINY))
    assert meta["metrics"]["macs"] == 3 * one  # three views
    assert main(["info", "--model", str(out)]) == 0
    assert "2, 3 views averaged: model.onnx (face + mirror); best.pt (face)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["--member-tta", "flip"], "one of none or flip per member (2, in order)"),
    (["--member-tta", "multicrop,none"], "one of none or flip per member"),
])
def test_member_tta_must_name_each_members_views(runs, tmp_path, capsys, argv, fragment):
    out = tmp_path / "bad.onnx"
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "best.pt"), *argv, "-o", str(out)]) == 2
    assert fragment in capsys.readouterr().err and not out.exists()
    assert main(["export", str(runs[0] / "best.pt"), "--member-tta", "flip", "-o", str(out)]) == 2
    assert "--member-tta is for ensembles" in capsys.readouterr().err


def test_members_with_their_own_normalisation_see_their_own_input():
    spec_a = InputSpec(mean=0.5, std=0.25)
    spec_b = InputSpec(mean=0.4, std=0.3)
    torch.manual_seed(0)
    net = build_model("compact", 7, 1, **TINY).eval()
    weights = net.state_dict()
    members = [Member(Path("a.pt"), "compact", dict(TINY), list("abcdefg"), spec, weights)
               for spec in (spec_a, spec_b)]
    model, spec, _, _ = build_ensemble(members)
    pixels = torch.from_numpy(np.stack(faces(4))).float()[:, None]
    with torch.no_grad():
        got = torch.softmax(model(normalize(pixels, spec.mean, spec.std)), 1)
        want = (torch.softmax(net(normalize(pixels, 0.5, 0.25)), 1)
                + torch.softmax(net(normalize(pixels, 0.4, 0.3)), 1)) / 2
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("which, fragment", [
    ("no-output", "name it with -o"),
    ("ensemble", "is an ensemble; pass its members"),
    ("text", "is not an emotiscope checkpoint"),
    ("margin", "--crop-margin applies to one checkpoint"),
])
def test_bad_ensembles_are_one_line_errors(runs, tmp_path, capsys, which, fragment):
    a, b = str(runs[0] / "best.pt"), str(runs[1] / "best.pt")
    out = str(tmp_path / "e.onnx")
    if which == "ensemble":
        assert main(["export", a, b, "-o", out]) == 0
        capsys.readouterr()
        argv = ["export", out, a, "-o", str(tmp_path / "e2.onnx")]
    else:
        (tmp_path / "notes.pt").write_text("hello")
        argv = {"no-output": ["export", a, b],
                "text": ["export", a, str(tmp_path / "notes.pt"), "-o", out],
                "margin": ["export", a, b, "-o", out, "--crop-margin", "0.1"]}[which]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_one_member_is_not_an_ensemble():
    from emotiscope.errors import ConfigError
    member = Member(Path("a.pt"), "compact", dict(TINY), list("abcdefg"), InputSpec(), {})
    with pytest.raises(ConfigError, match="needs at least two models"):
        build_ensemble([member])


def test_members_with_different_labels_are_refused(sample_csv, runs, tmp_path, capsys):
    out = tmp_path / "runs"
    other = loop.train(config(sample_csv, out, classes=["happy", "sad"], name="two"), command="train")
    assert main(["export", str(runs[0] / "best.pt"), str(other / "best.pt"),
                 "-o", str(tmp_path / "e.onnx")]) != 0
    assert "ensemble models trained on the same classes" in capsys.readouterr().err


def test_an_ensemble_cannot_be_fine_tuned_or_trained_as_such(runs, tmp_path, capsys):
    out = tmp_path / "e.onnx"
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "best.pt"), "-o", str(out)]) == 0
    capsys.readouterr()
    from emotiscope.errors import ConfigError
    with pytest.raises(ConfigError, match="not trained with --arch ensemble"):
        build_model("ensemble", 7)
    from emotiscope.training.prepare import load_init
    with pytest.raises(ConfigError, match="fine-tune one of its members"):
        load_init(out)


def test_export_tta_is_what_every_verb_then_does(runs, tmp_path, capsys):
    single, both = tmp_path / "single.onnx", tmp_path / "both.onnx"
    assert main(["export", str(runs[0] / "best.pt"), "-o", str(single), "--tta", "flip"]) == 0
    assert main(["export", str(runs[0] / "best.pt"), str(runs[1] / "best.pt"), "-o", str(both)]) == 0
    assert EmotionClassifier(single, threads=1).info.flip_tta is True
    assert EmotionClassifier(both, threads=1).info.flip_tta is False
    assert EmotionClassifier(runs[0] / "model.onnx", threads=1).info.flip_tta is False
    capsys.readouterr()
    assert main(["info", "--model", str(single)]) == 0
    assert any(line.startswith("tta") and "flip" in line for line in capsys.readouterr().out.splitlines())
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(runs[0] / "best.pt"), "-o", str(tmp_path / "x.onnx"), "--tta", "ten"])
    assert exit_.value.code == 2 and "ten" in capsys.readouterr().err


def test_an_onnx_model_is_restamped_with_its_weights_untouched(runs, tmp_path, capsys):
    src = runs[0] / "model.onnx"
    out = tmp_path / "flip.onnx"
    assert main(["export", str(src), "-o", str(out), "--tta", "flip"]) == 0
    before, after = EmotionClassifier(src, threads=1), EmotionClassifier(out, threads=1)
    assert after.info.flip_tta and not before.info.flip_tta
    assert after.info.temperature == before.info.temperature and after.labels == before.labels
    np.testing.assert_array_equal(after.predict_crops(faces()), before.predict_crops(faces()))
    assert after.info.metadata["training"]["restamped"]["sha256"] == before.info.sha256
    assert main(["export", str(src), "--tta", "flip"]) != 0  # would overwrite itself
    assert "--force" in capsys.readouterr().err
