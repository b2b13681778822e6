"""outputs.py: files appear whole or not at all; names that are not UTF-8 print safely."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotiscope.errors import ConfigError, OutputError
from emotiscope.images import save_image
from emotiscope.outputs import (
    atomic_path,
    check_new,
    check_writable_folder,
    display,
    refuse_inputs,
    resolved,
    save_figure,
    write_bytes,
    write_json,
)


def test_write_bytes_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    write_bytes(target, b"first")
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["a.bin"]  # no temporary file left behind


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk died"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new conte")
            raise RuntimeError("disk died")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(TypeError):  # not JSON-serialisable, found only while writing
        write_json(tmp_path / "new.json", {"a": object()})
    assert os.listdir(tmp_path) == ["report.json"]


def test_the_temporary_file_keeps_the_suffix_and_is_hidden(tmp_path):
    with atomic_path(tmp_path / "chart.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "chart.png").read_bytes() == b"png"


def test_a_name_near_the_length_limit_is_written_and_one_beyond_it_says_so(tmp_path):
    long = "é" * 120 + ".png"  # 244 bytes: the file fits, a temporary name with all of it not
    assert write_bytes(tmp_path / long, b"png").read_bytes() == b"png"
    assert os.listdir(tmp_path) == [long]
    with pytest.raises(OutputError, match=r"name is too long \(304 bytes.*choose a shorter name"):
        write_bytes(tmp_path / ("a" * 300 + ".png"), b"png")
    with pytest.raises(OutputError, match="name is too long"):  # its checks do not raise OSError
        save_image(tmp_path / ("a" * 300 + ".png"), np.zeros((4, 4, 3), np.uint8))


def test_an_unwritable_place_is_one_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*file/a.png: .*choose another output"):
        write_bytes(tmp_path / "file" / "a.png", b"x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "file" / "deeper", "--out")
    assert check_writable_folder(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"


def test_save_figure_writes_the_format_of_the_suffix(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = plt.figure(figsize=(1, 1))
    save_figure(fig, tmp_path / "a.png")
    save_figure(fig, tmp_path / "a.svg")
    plt.close(fig)
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "a.svg"]


def test_display_makes_undecodable_names_printable():
    name = os.fsdecode(b"caf\xe9.jpg")  # what os.listdir gives for a Latin-1 name
    assert display(name) == "caf\\xe9.jpg"
    assert display(Path("/tmp") / name) == "/tmp/caf\\xe9.jpg"
    assert display("café.jpg") == "café.jpg"
    display(name).encode("utf-8")  # would raise for the raw name
    json.loads(json.dumps(display(name), ensure_ascii=False))


def test_save_image_killed_midway_never_leaves_a_truncated_image(tmp_path):
    """SIGKILL a process in the middle of writing an image over an older one (its file write is
    made to stall half-way): the target still holds the whole older image."""
    target = tmp_path / "a.png"
    save_image(target, np.full((8, 8, 3), 7, np.uint8))
    script = """
import sys, time, numpy as np
import emotiscope.outputs
from emotiscope.images import save_image

class Stalling:
    def __init__(self, fh): self.fh = fh
    def __enter__(self): return self
    def __exit__(self, *exc): self.fh.close()
    def write(self, data):
        self.fh.write(data[:len(data) // 2]); self.fh.flush()
        print("midway", flush=True); time.sleep(60)

emotiscope.outputs.open = lambda path, mode: Stalling(open(path, mode))
save_image(sys.argv[1], np.zeros((300, 300, 3), np.uint8), overwrite=True)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "midway"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    from emotiscope.images import load_image

    assert load_image(target).tolist() == np.full((8, 8, 3), 7, np.uint8).tolist()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "a.png"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".a.")  # the hidden, half temp file


def test_a_name_too_long_is_refused_before_any_work(tmp_path):
    with pytest.raises(OutputError, match=r"name is too long \(260 bytes.*choose a shorter name"):
        check_new(tmp_path / ("x" * 256 + ".mp4"), create_folder=False)


def test_an_output_that_is_an_input_is_refused_even_with_force(tmp_path):
    data = tmp_path / "a.csv"
    data.write_text("emotion,pixels\n")
    os.link(data, tmp_path / "hard.csv")
    (tmp_path / "soft.csv").symlink_to("a.csv")
    for out in ("a.csv", "hard.csv", "soft.csv"):
        with pytest.raises(ConfigError, match=f"--x {tmp_path / out} would overwrite the input"):
            refuse_inputs([("--x", tmp_path / out)], [data])
    refuse_inputs([("--x", tmp_path / "b.csv"), ("--y", None)], [data])  # another file: fine


def test_an_output_in_a_data_folder_s_class_folders_is_refused(tmp_path):
    (tmp_path / "d" / "happy").mkdir(parents=True)
    with pytest.raises(ConfigError, match="lies inside the input folder"):
        refuse_inputs([("--out", tmp_path / "d" / "happy" / "a.png")], [tmp_path / "d"])
    refuse_inputs([("--out", tmp_path / "d" / "chart.png")], [tmp_path / "d"])  # beside the classes


def test_a_symlink_loop_is_one_output_error(tmp_path):
    (tmp_path / "lo").symlink_to("lo")
    with pytest.raises(OutputError, match=f"--out {tmp_path / 'lo' / 'a.jpg'}: symlink loop"):
        resolved(tmp_path / "lo" / "a.jpg", "--out")
