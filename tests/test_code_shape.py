"""The house rules a new maintainer can rely on: small modules, short functions."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "emotiscope"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# Known exceptions, each with the issue that removes it.
ALLOWED = {"commands/train.py:register"}  # issue 10, training side: flags from TrainConfig


def _modules():
    return sorted(SRC.rglob("*.py"))


def test_no_module_over_300_lines():
    long = [f"{p.relative_to(SRC)}: {n}" for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long


def test_no_function_over_60_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(SRC).as_posix()}:{node.name}"
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and name not in ALLOWED:
                    long.append(name)
    assert not long
