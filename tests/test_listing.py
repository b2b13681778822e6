"""Folder inputs of predict and batch: each file resolved only when it is a link."""

from __future__ import annotations

import os

import pytest

from emotiscope.batch import collect_inputs
from emotiscope.images import iter_image_paths


@pytest.mark.parametrize("lister", [lambda items: collect_inputs(items)[0],
                                    lambda items: list(iter_image_paths(items))],
                         ids=["batch", "predict"])
def test_a_folder_is_listed_without_resolving_each_file(tmp_path, monkeypatch, lister):
    names = ["a/b/1.jpg", "a-b/2.JPG", "a/3.png", "4.jpg", ".hidden/5.jpg", "b/.6.jpg"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "same.jpg").symlink_to(tmp_path / "a" / "3.png")  # one file under two names
    realpath, calls = os.path.realpath, []
    monkeypatch.setattr(os.path, "realpath", lambda *a, **k: calls.append(a[0]) or realpath(*a, **k))
    found = lister([str(tmp_path), str(tmp_path / "4.jpg")])
    assert found == [tmp_path / n for n in ("4.jpg", "a/3.png", "a/b/1.jpg", "a-b/2.JPG")]
    assert len(calls) <= 3  # the folder, the link, the file given by name: not each file


def test_a_folder_that_vanishes_while_listed_is_passed_over(tmp_path, monkeypatch):
    from emotiscope import listing

    for name in ("a/x.jpg", "b/y.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    scandir = os.scandir

    def gone(path):  # `a` deleted between its parent's listing and its own
        if str(path).endswith(os.sep + "a"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return scandir(path)

    monkeypatch.setattr(listing.os, "scandir", gone)
    assert [p for p, _ in listing.folder_files(tmp_path, frozenset({".jpg"}))] == [tmp_path / "b/y.jpg"]
