"""House rule: modules under 300 lines, functions under 60 (training side; the inference side
checks its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import emotiscope

ROOT = Path(emotiscope.__file__).parent
CHECKED = [*sorted((ROOT / "training").glob("*.py")),
           *(ROOT / "commands" / f"{name}.py" for name in ("train", "export", "info", "_flags")),
           ROOT / "model_file.py", ROOT / "classify.py"]


def test_training_modules_and_functions_stay_small():
    too_long = []
    for path in CHECKED:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 300:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}:{node.lineno} {node.name}() {length} lines")
    assert not too_long, too_long
