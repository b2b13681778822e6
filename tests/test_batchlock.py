"""One `emotiscope batch` run writes a --out folder at a time: a second is refused in one line
and writes nothing, the lock goes however a run ends (SIGKILL included), and a run clears the
temporary parts killed runs left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotiscope.cli import main
from emotiscope.images import encode_image

pytest.importorskip("pyarrow", reason='emotiscope batch needs pyarrow: pip install ".[batch]"')
fcntl = pytest.importorskip("fcntl", reason="the lock is checked with flock (POSIX)")


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    photo = tmp_path / "grey.png"  # no face: the quickest file to analyse
    photo.write_bytes(encode_image(np.full((90, 120, 3), 128, np.uint8)))
    return [photo]


@pytest.fixture
def flags(tiny_model_path) -> list[str]:
    return ["--model", str(tiny_model_path), "--detector", "haar"]


def batch(inputs, out: Path, flags, *extra) -> int:
    return main(["batch", *map(str, inputs), "--out", str(out), *flags, *extra])


def is_locked(out: Path) -> bool:
    try:
        fd = os.open(out / ".lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def test_a_second_run_on_a_locked_out_is_refused_in_one_line_and_writes_nothing(
        inputs, flags, tmp_path, capsys):
    from emotiscope.batchlock import lock_out
    from emotiscope.batchstore import read_rows

    out = tmp_path / "out"
    assert batch(inputs, out, flags) == 0
    capsys.readouterr()
    with lock_out(out):  # as another run holds it (its own open file: flock refuses this one)
        before = snapshot(out)
        # other settings with --force: unlocked, this would start the dataset over
        assert batch(inputs, out, flags, "--smooth", "0.3", "--force") == 1
        assert snapshot(out) == before
        assert read_rows(out).num_rows == 1  # reading the rows takes no lock
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another emotiscope batch" in err and str(out) in err
    assert f"process {os.getpid()}" in err and "wait for it to end" in err
    assert batch(inputs, out, flags) == 0  # once released


@pytest.mark.parametrize("ending", ["normal", "error", "ctrl-c"])
def test_a_run_holds_the_lock_and_releases_it_however_it_ends(inputs, flags, tmp_path,
                                                              monkeypatch, ending):
    from emotiscope.batchlock import lock_out
    from emotiscope.batchstore import Store

    out, held = tmp_path / "out", []
    is_done = Store.is_done

    def checking(self, path):
        held.append(is_locked(out))
        if ending == "error":
            raise RuntimeError("a bug")
        if ending == "ctrl-c":
            raise KeyboardInterrupt
        return is_done(self, path)

    monkeypatch.setattr(Store, "is_done", checking)
    if ending == "error":
        with pytest.raises(RuntimeError, match="a bug"):
            batch(inputs, out, flags)
    else:
        assert batch(inputs, out, flags) == (0 if ending == "normal" else 130)
    assert held == [True] and not is_locked(out)
    with lock_out(out):
        pass


def test_temporary_parts_left_by_killed_runs_are_removed_when_a_run_starts(
        inputs, flags, tmp_path, capsys):
    out = tmp_path / "out"
    assert batch(inputs, out, flags) == 0
    (part,) = (out / "parts").iterdir()
    stale = [out / "parts" / ".part-0123abcd.4567cdef.tmp",  # a local worker's (temp_prefix)
             out / "parts" / f".{part.stem}.89abcdef.tmp.parquet"]  # a Ray table's
    for tmp in stale:
        tmp.write_bytes(b"\0" * 500_000)
    capsys.readouterr()
    assert batch(inputs, out, flags) == 0
    assert list((out / "parts").iterdir()) == [part]
    err = capsys.readouterr().err
    assert "2 temporary part(s) left by killed runs removed" in err and "(1.0 MB)" in err


def test_a_run_killed_with_sigkill_leaves_the_folder_unlocked(tmp_path):
    from emotiscope.batchlock import lock_out
    from emotiscope.errors import OutputError

    out = tmp_path / "out"
    code = ("import sys, time\nfrom emotiscope.batchlock import lock_out\n"
            "with lock_out(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        with pytest.raises(OutputError, match="another emotiscope batch"):
            with lock_out(out):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and (out / ".lock").exists()  # left, not held
    assert not is_locked(out)
    with lock_out(out):
        pass
