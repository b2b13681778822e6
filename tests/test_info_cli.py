from __future__ import annotations

import json

from fixtures.tiny_model import make_tiny_model

from emotiscope.cli import main
from emotiscope.model_file import file_sha256


def test_info_prints_the_model_card(capsys, tiny_model_path):
    assert main(["info", "--model", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    assert "angry, disgust, fear, happy, neutral, sad, surprise" in out
    assert file_sha256(tiny_model_path) in out
    assert "48x48 grey" in out and "onnxruntime" in out


def test_info_json_has_metrics_and_versions(tmp_path, capsys):
    meta = {"labels": ["calm", "excited"], "arch": "test", "version": "1",
            "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25, "margin": 0.2},
            "metrics": {"val": {"accuracy": 0.6543219, "macro_f1": 0.5}}, "training": {}}
    model = make_tiny_model(tmp_path / "m.onnx", labels=("calm", "excited"), metadata=meta)
    assert main(["info", "--model", str(model), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["labels"] == ["calm", "excited"] and card["input"]["margin"] == 0.2
    assert card["metrics"]["val"]["accuracy"] == 0.6543219
    assert {"emotiscope", "onnxruntime", "opencv", "numpy"} <= set(card["versions"])
    assert main(["info", "--model", str(model)]) == 0
    assert "val.accuracy" in capsys.readouterr().out


def test_info_with_a_bad_model_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    assert main(["info", "--model", str(bad)]) == 1
    assert "emotiscope info: error:" in capsys.readouterr().err


def test_info_refuses_a_graph_that_disagrees_with_its_metadata(tmp_path, capsys):
    from fixtures.tiny_model import make_pooled_model

    bad = make_pooled_model(tmp_path / "colour64.onnx", ["N", 3, 64, 64])  # metadata: 48 grey
    assert main(["info", "--model", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes a Nx3x64x64 float input" in err[0]
