"""The torch-free half of emotiscope.training works where torch is not installed: data loading,
evaluation with an ONNX model, plots, calibration, duplicates, mistakes, the FER CSV reader,
the training configuration and `train --help`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

TORCH_FREE = ("data", "evaluate", "plots", "calibrate", "duplicates", "mistakes", "fercsv", "config",
              "runlog")

BLOCK_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
"""


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EMOTISCOPE_CACHE": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)


def test_torch_free_modules_import_and_work_without_torch(tmp_path, tiny_model_path, fer_folders):
    data = fer_folders
    code = f"""
import importlib, sys
for name in {TORCH_FREE!r}:
    importlib.import_module("emotiscope.training." + name)
from emotiscope.cli import main
code = main(["evaluate", {str(data)!r}, "--model", {str(tiny_model_path)!r}, "--json"])
try:
    main(["train", "--help"])
except SystemExit as exit:
    assert exit.code == 0
assert "torch" not in sys.modules
raise SystemExit(code)
"""
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[:done.stdout.index("usage: emotiscope train")])
    assert report["n"] == 35 and 0 <= report["accuracy"] <= 1
    shown = " ".join(done.stdout.split())
    assert "--epochs EPOCHS" in shown and "(default: 60, 10 with --init-from)" in shown


def test_training_without_torch_says_how_to_install_it(tmp_path):
    code = """
from emotiscope.cli import main
raise SystemExit(main(["train", "x.csv"]))
"""
    done = _run(code, tmp_path)
    assert done.returncode == 1 and "pip install torch" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
