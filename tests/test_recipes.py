"""The GPU recipe runs where nobody can debug it (a lent GPU, minutes at a time): it must at
least parse. (Its full CPU dry run, ~100 s, is in docs/TRAINING.md and its header.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.fer import write_fer_csv

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.sh"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_recipe_parses(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_there_is_a_gpu_recipe():
    assert any(p.name == "gpu.sh" for p in RECIPES)


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils' timeout")
def test_gpu_recipe_takes_paths_relative_to_the_caller(tmp_path):
    write_fer_csv(tmp_path / "fer.csv", per_class=2)
    # A 0.1 s teacher budget stops the teachers at once: the recipe gives up after its first steps.
    env = {**os.environ, "DEVICE": "cpu", "BUDGET_T": "0.1", "OUT": "out", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(RECIPES[-1].parent / "gpu.sh"), "fer.csv"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    log = (tmp_path / "out" / "recipe.log").read_text()
    assert f"data {tmp_path / 'fer.csv'} on cpu" in log and "no teacher finished an epoch" in log
    assert not list(tmp_path.glob("tmp.*"))  # its work folder is removed
