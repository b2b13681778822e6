"""`train --nproc 2`: real 2-process DistributedDataParallel (gloo) on a tiny generated set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch build has no gloo backend", allow_module_level=True)

from fixtures.training import TINY  # noqa: E402

OUTPUTS = ("best.pt", "last.pt", "model.onnx", "history.json", "config.json", "report.json")


def train(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    widths, depths = (",".join(map(str, TINY[k])) for k in ("widths", "depths"))
    new = [] if "--resume" in args else ["--widths", widths, "--depths", depths, "--threads", "1",
                                         "--batch-size", "32"]
    return subprocess.run([sys.executable, "-m", "emotiscope", "train", *map(str, args), *new],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_train_one_run_and_resume_it(sample_csv, tmp_path):
    done = train(sample_csv, "--nproc", "2", "--epochs", "1", "--out", tmp_path / "runs",
                 cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 processes (gloo, cpu)" in done.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # rank 1 made no folder of its own
    run_dir = runs[0]
    assert done.stdout.strip().endswith(run_dir.name)
    assert all((run_dir / name).is_file() for name in OUTPUTS)
    assert json.loads((run_dir / "config.json").read_text())["nproc"] == 2
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1]
    ckpt = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["config"]["nproc"] == 2 and ckpt["epoch"] == 1

    more = train("--resume", run_dir, "--epochs", "2", cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    refused = train("--resume", run_dir, "--nproc", "1", cwd=tmp_path)
    assert refused.returncode == 2 and "--nproc cannot change" in refused.stderr
