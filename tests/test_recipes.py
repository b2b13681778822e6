"""The GPU recipe runs where nobody can debug it (a lent GPU, minutes at a time): it must at
least parse. (Its full CPU dry run, ~100 s, is in docs/TRAINING.md and its header.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.sh"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_recipe_parses(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_there_is_a_gpu_recipe():
    assert any(p.name == "gpu.sh" for p in RECIPES)
