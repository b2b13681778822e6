"""Temperature scaling and expected calibration error (numpy only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotiscope.classify import EmotionClassifier, softmax
from emotiscope.cli import main
from emotiscope.errors import ModelError
from emotiscope.training.calibrate import calibration_record, fit_temperature, nll, reliability


def overconfident(n: int = 4000, k: int = 7, scale: float = 3.0, seed: int = 0):
    """Logits whose true temperature is `scale`: labels are drawn from softmax(logits / scale)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (n, k))
    p = softmax(logits, scale)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return logits, labels


def test_fit_recovers_the_temperature_and_lowers_nll_and_ece():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert nll(logits, labels, t) < nll(logits, labels, 1.0)
    before = reliability(softmax(logits), labels)["ece"]
    after = reliability(softmax(logits, t), labels)["ece"]
    assert after < before / 3 and after < 0.03


def test_temperature_never_changes_the_predicted_label():
    logits, _ = overconfident(200)
    assert (softmax(logits, 0.3).argmax(1) == softmax(logits, 5).argmax(1)).all()


def test_reliability_bins_add_up():
    probs = np.array([[0.95, 0.05], [0.92, 0.08], [0.65, 0.35], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0])
    out = reliability(probs, labels, bins=10)
    assert [b["n"] for b in out["bins"]] == [1, 1, 2]
    # bin 0.9-1.0: confidence 0.935, accuracy 0.5; bin 0.6-0.7: 0.65 vs 1; bin 0.5-0.6: 0.55 vs 1
    expected = 0.5 * abs(0.5 - 0.935) + 0.25 * abs(1 - 0.65) + 0.25 * abs(1 - 0.55)
    assert out["ece"] == pytest.approx(expected, abs=1e-4)


def test_calibration_record_and_empty_input():
    logits, labels = overconfident(500)
    rec = calibration_record(logits, labels, "held-out")
    assert rec["fitted_on"] == "held-out" and rec["n"] == 500
    assert rec["nll_after"] <= rec["nll_before"]
    assert fit_temperature(np.zeros((0, 7)), np.zeros(0, int)) == 1.0


def test_calibration_leaves_out_near_duplicates_of_training_faces():
    new_logits, new_labels = overconfident(600)
    twins = np.eye(7)[np.arange(300) % 7] * 2.0  # twins of training faces: right, not confident
    logits, labels = np.vstack([new_logits, twins]), np.concatenate([new_labels, np.arange(300) % 7])
    twin = np.arange(900) >= 600
    rec = calibration_record(logits, labels, "held-out", twin)
    assert rec["n"] == 600
    assert rec["fitted_on"] == "held-out, without its 300 near-duplicates of training faces"
    assert rec["temperature"] == fit_temperature(new_logits, new_labels)
    assert calibration_record(logits, labels, "held-out")["temperature"] < rec["temperature"] - 0.3
    few = calibration_record(logits[450:], labels[450:], "held-out", twin[450:])
    assert few["n"] == 450 and few["fitted_on"] == "held-out"  # 150 < MIN_FIT would be left: all used


def test_a_validation_split_that_is_all_right_keeps_temperature_one():
    # 6 held-out faces, all right (a small fine-tune): the NLL falls all the way to T=0.05, which
    # would make every later prediction read 100 %
    logits = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 4.0
    rec = calibration_record(logits, np.array([0, 1, 2, 0, 1, 2]), "20% held out")
    assert rec["temperature"] == 1.0 and "not fitted" in rec["note"]
    assert rec["nll_after"] == rec["nll_before"]
    wrong = calibration_record(logits, np.array([1, 2, 0, 1, 2, 0]), "held-out")
    assert wrong["temperature"] > 10 and "note" not in wrong  # all wrong: near-uniform, earned
    assert "note" not in calibration_record(*overconfident(500), "held-out")


def _with_temperature(src, dst, value):
    import onnx

    from emotiscope.model_file import METADATA_KEY

    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props[METADATA_KEY])
    meta["temperature"] = value
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
    onnx.save(proto, str(dst))
    return dst


def test_classifier_applies_the_models_temperature(tiny_model_path, tmp_path):
    pytest.importorskip("onnx")
    hot = EmotionClassifier(_with_temperature(tiny_model_path, tmp_path / "t.onnx", 2.5))
    plain = EmotionClassifier(tiny_model_path)
    assert hot.info.temperature == 2.5 and plain.info.temperature == 1.0
    batch = np.random.default_rng(0).normal(0, 1, (4, 1, 48, 48)).astype(np.float32)
    logits = plain.session.run(None, {plain._input: batch})[0]
    np.testing.assert_allclose(hot.predict_batch(batch), softmax(logits, 2.5), atol=1e-5)
    raw = hot.predict_batch(batch, temperature=1.0)
    np.testing.assert_allclose(raw, plain.predict_batch(batch), atol=1e-6)


@pytest.mark.parametrize("value", [0, -1, "hot", 1e9, True])
def test_a_bad_temperature_is_refused(tiny_model_path, tmp_path, value):
    pytest.importorskip("onnx")
    with pytest.raises(ModelError, match="temperature"):
        EmotionClassifier(_with_temperature(tiny_model_path, tmp_path / "bad.onnx", value))


def test_evaluate_reports_ece_and_draws_the_reliability_diagram(sample_csv, tiny_model_path, tmp_path,
                                                              capsys):
    pytest.importorskip("matplotlib")
    model = _with_temperature(tiny_model_path, tmp_path / "t.onnx", 2.0)
    assert main(["evaluate", str(sample_csv), "--model", str(model), "--out", str(tmp_path / "ev")]) == 0
    assert "expected calibration error" in capsys.readouterr().out
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    cal = report["calibration"]
    assert cal["temperature"] == 2.0 and 0 <= cal["ece"] <= 1 and "ece_uncalibrated" in cal
    assert sum(b["n"] for b in cal["bins"]) == report["n"]
    assert (tmp_path / "ev" / "reliability.png").stat().st_size > 1000


def test_a_fit_at_the_range_end_with_a_wrong_face_does_not_say_every_face_is_right():
    logits = np.eye(3)[[0, 1, 2] * 100] * 20.0
    labels = np.array([0, 1, 2] * 100)
    logits[0], labels[0] = [1.0, 1.0, 0.0], 1  # one face wrong: a tie argmax breaks for 0
    rec = calibration_record(logits, labels, "held-out")
    assert rec["temperature"] == 1.0 and "end of its range" in rec["note"]
    assert "every validation face is right" not in rec["note"]
