"""`emotiscope batch`: the Parquet rows equal predict's and video's, resuming never duplicates,
failures are listed; the process pool and a real local Ray give the same rows."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures import videos

from emotiscope.cli import main
from emotiscope.images import encode_image, sample_image_path

pytest.importorskip("pyarrow", reason='emotiscope batch needs pyarrow: pip install ".[batch]"')

FRAMES = 10


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A folder with the sample photo (faces), a grey photo (no face) and a two-face video."""
    folder = tmp_path_factory.mktemp("batch-in")
    shutil.copy(sample_image_path(), folder / "sample.jpg")
    (folder / "grey.png").write_bytes(encode_image(np.full((90, 120, 3), 128, np.uint8)))
    videos.write_video(folder / "two.avi", videos.two_face_frames(FRAMES))
    return folder


@pytest.fixture
def flags(tiny_model_path) -> list[str]:
    return ["--model", str(tiny_model_path), "--detector", "haar"]


def batch(inputs, out: Path, flags, *extra) -> int:
    return main(["batch", *map(str, inputs), "--out", str(out), *flags, *extra])


def rows(out: Path) -> list[dict]:
    from emotiscope.batchstore import read_rows

    table = read_rows(out).to_pylist()
    return sorted(table, key=lambda r: (r["file"], r["frame"] or 0, r["face"] or 0))


def test_rows_equal_predict_json_and_video_csv(media, flags, tmp_path, capsys):
    assert batch([media], tmp_path / "out", flags, "--workers", "1") == 0
    got = rows(tmp_path / "out")
    photos = [r for r in got if not r["file"].endswith(".avi")]
    clip = [r for r in got if r["file"].endswith(".avi")]
    capsys.readouterr()
    assert main(["predict", str(media / "grey.png"), str(media / "sample.jpg"), "--json",
                 *flags]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r["face"]) for r in photos] == [(p["file"], p["face"]) for p in printed]
    for row, line in zip(photos, printed, strict=True):
        if line["face"] is None:
            assert row["label"] is None and row["x"] is None
            continue
        assert {k: row[k] for k in "xywh"} == line["box"] and row["label"] == line["label"]
        assert {k: round(row[k], 4) for k in line["scores"]} == line["scores"]
        assert row["time"] is None and row["track_id"] is None
    assert main(["video", str(media / "two.avi"), "--csv", str(tmp_path / "v.csv"), *flags]) == 0
    table = list(csv.DictReader((tmp_path / "v.csv").open()))
    assert len(clip) == len(table) == 2 * FRAMES
    by_key = {(int(t["frame"]), int(t["track_id"])): t for t in table}
    for row in clip:
        line = by_key[(row["frame"], row["track_id"])]
        assert [row[k] for k in ("x", "y", "w", "h", "label")] == \
            [int(line[k]) for k in "xywh"] + [line["label"]]
        assert f"{row['score']:.4f}" == line["score"] and f"{row['time']:.3f}" == line["time"]


def test_a_second_run_skips_done_files_and_nothing_is_duplicated(media, flags, tmp_path, capsys):
    work = tmp_path / "in"
    shutil.copytree(media, work)
    out = tmp_path / "out"
    assert batch([work], out, flags, "--workers", "1") == 0
    first = rows(out)
    assert batch([work], out, flags, "--workers", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["analysed"]) == (3, 0)
    # A changed file and a run killed after a part was written but before its done line:
    os.utime(work / "sample.jpg", ns=(0, 10**18))
    done = (out / "done.jsonl").read_text().splitlines()
    kept = [line for line in done if "grey.png" not in line]
    (out / "done.jsonl").write_text("\n".join(kept) + "\n{\"path\": \"cut sh")  # a cut last line
    assert batch([work], out, flags, "--workers", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["analysed"]) == (1, 2)
    assert rows(out) == first
    assert len(list((out / "parts").glob("*.parquet"))) == 3


def test_process_pool_gives_the_same_rows(media, flags, tmp_path):
    assert batch([media], tmp_path / "one", flags, "--workers", "1") == 0
    assert batch([media], tmp_path / "two", flags, "--workers", "2") == 0
    assert rows(tmp_path / "two") == rows(tmp_path / "one")


def test_path_lists_and_failures(media, flags, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"not a photo")
    listing = tmp_path / "paths.txt"
    listing.write_text(f"# photos\n{media / 'sample.jpg'}\n\n{tmp_path / 'bad.jpg'}\n")
    out = tmp_path / "out"
    assert batch([f"@{listing}", tmp_path / "missing.png"], out, flags, "--workers", "1") == 1
    err = capsys.readouterr().err
    assert "2 input(s) failed" in err and "bad.jpg" in err and "missing.png" in err
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 2
    assert {r["file"] for r in rows(out)} == {str(media / "sample.jpg")}
    assert batch(["--from-file", listing], tmp_path / "out2", flags) == 1


def test_other_settings_are_refused_without_force(media, flags, tmp_path, capsys):
    out = tmp_path / "out"
    assert batch([media / "grey.png"], out, flags) == 0
    assert batch([media / "grey.png"], out, flags, "--min-face", "40") == 2
    assert "other settings" in capsys.readouterr().err
    assert batch([media / "grey.png"], out, flags, "--min-face", "40", "--force") == 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    assert batch([media / "grey.png"], tmp_path / "full", flags) == 2
    assert batch([media / "grey.png"], tmp_path / "o", flags, "--address", "auto") == 2


def test_ray_engine_on_a_local_ray_gives_the_same_rows(media, flags, tmp_path):
    pytest.importorskip("ray.data", reason='Ray Data is not installed: pip install ".[ray]"')
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(media / "sample.jpg", photos / "a.jpg")
    shutil.copy(media / "grey.png", photos / "b.png")
    shutil.copy(media / "sample.jpg", photos / "c.jpg")
    assert batch([photos], tmp_path / "local", flags, "--workers", "1") == 0
    assert batch([photos], tmp_path / "ray", flags, "--engine", "ray", "--workers", "2") == 0
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["engine"] == "ray"


def test_the_model_is_recorded_however_it_was_chosen(media, tiny_model_path, tmp_path,
                                                     monkeypatch, capsys):
    from fixtures.tiny_model import make_tiny_model

    other = make_tiny_model(tmp_path / "other.onnx", seed=1)
    out = tmp_path / "out"
    monkeypatch.setenv("EMOTISCOPE_MODEL", str(tiny_model_path))
    assert batch([media / "grey.png"], out, ["--detector", "auto"]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["model"] == "tiny.onnx" and len(settings["model_sha256"]) == 64
    assert settings["detector"] in ("yunet", "haar")
    monkeypatch.setenv("EMOTISCOPE_MODEL", str(other))  # another model, the same flags
    assert batch([media / "grey.png"], out, ["--detector", "auto"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert batch([media / "grey.png"], out, ["--model", str(tiny_model_path)]) == 0


def test_a_dataset_from_before_model_identities_resumes(media, flags, tmp_path):
    from emotiscope.batch import VideoSettings, flag_settings
    from emotiscope.options import RecognizerOptions

    out = tmp_path / "out"
    assert batch([media / "grey.png"], out, flags) == 0
    options = RecognizerOptions(model=flags[1], detector="haar")
    (out / "settings.json").write_text(json.dumps(flag_settings(options, VideoSettings())))
    assert batch([media / "grey.png"], out, flags) == 0
    assert json.loads((out / "summary.json").read_text())["skipped"] == 1
    assert "model_sha256" in json.loads((out / "settings.json").read_text())


def test_a_done_file_that_now_fails_loses_its_rows(media, flags, tmp_path):
    work = tmp_path / "in"
    work.mkdir()
    shutil.copy(media / "sample.jpg", work / "a.jpg")
    shutil.copy(media / "grey.png", work / "b.png")
    out = tmp_path / "out"
    assert batch([work], out, flags, "--workers", "1") == 0
    (work / "a.jpg").write_bytes(b"not a photo any more")
    assert batch([work], out, flags, "--workers", "1") == 1
    assert {r["file"] for r in rows(out)} == {str(work / "b.png")}
    last = json.loads((out / "done.jsonl").read_text().splitlines()[-1])
    assert last == {"path": str((work / "a.jpg").resolve()), "part": None}
    assert batch([work], out, flags, "--workers", "1") == 1  # tried again, not taken as done
    assert json.loads((out / "summary.json").read_text())["skipped"] == 1


def test_ray_with_every_file_done_starts_nothing(media, flags, tmp_path, monkeypatch):
    import importlib.machinery
    import sys
    import types

    out = tmp_path / "out"
    assert batch([media / "grey.png"], out, flags) == 0
    ray = types.ModuleType("ray")  # "installed", but any use of it fails the test
    ray.__spec__ = importlib.machinery.ModuleSpec("ray", None)
    ray.__getattr__ = lambda name: pytest.fail(f"ray.{name} used with nothing to do")
    monkeypatch.setitem(sys.modules, "ray", ray)
    assert batch([media / "grey.png"], out, flags, "--engine", "ray") == 0


def test_ray_engine_without_ray_is_refused_before_out_is_made(media, flags, tmp_path,
                                                              monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "out"
    assert batch([media / "grey.png"], out, flags, "--engine", "ray") == 1
    err = capsys.readouterr().err.strip()
    assert 'pip install ".[ray]"' in err and len(err.splitlines()) == 1
    assert not out.exists()  # no settings.json, no lock, no folder


def test_a_bad_model_with_workers_fails_in_one_line(media, tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert batch([media], tmp_path / "out", ["--model", str(tmp_path / "bad.onnx"),
                                             "--detector", "haar"], "--workers", "2") != 0
    err = capsys.readouterr().err.strip()
    assert "bad.onnx" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nor is --out made


# -- a dataset folder with damaged state files ----------------------------------------------------

SETTINGS = {"model": "m.onnx", "smooth": 0.5}


def store_with_one_file(tmp_path: Path):
    """A Store holding one finished file (tmp_path/a.jpg), and that file."""
    from emotiscope.batchstore import Store

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    store = Store(tmp_path / "out", SETTINGS)
    store.add(photo, no_face(photo))
    return store, photo


def no_face(photo: Path):
    """The FileResult of a photo with no face (one null-face row), as Ray's engine gives it."""
    from emotiscope.batch import FileResult
    from emotiscope.batchparts import rows_table

    table, faces = rows_table([[{"file": str(photo), "face": None}]], ("happy",))
    return FileResult(str(photo), table=table, faces=faces)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00binary", b"[1, 2]"])
def test_a_damaged_settings_file_is_refused_in_one_line_and_force_starts_over(tmp_path, content):
    from emotiscope.batchstore import Store
    from emotiscope.errors import ConfigError

    store, photo = store_with_one_file(tmp_path)
    (store.root / "settings.json").write_bytes(content)
    with pytest.raises(ConfigError, match=r"settings.json is damaged \(.+\); pass --force") as err:
        Store(store.root, SETTINGS)
    assert "\n" not in str(err.value)
    again = Store(store.root, SETTINGS, force=True)
    assert not again.is_done(photo) and not list(again.parts.iterdir())
    assert json.loads((store.root / "settings.json").read_text()) == SETTINGS


@pytest.mark.parametrize("name", ["settings.json", "done.jsonl", "parts"])
def test_state_files_of_the_wrong_kind_are_refused_in_one_line(tmp_path, name):
    from emotiscope.batchstore import Store
    from emotiscope.errors import ConfigError

    store, _ = store_with_one_file(tmp_path)
    target = store.root / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.mkdir() if name != "parts" else target.write_text("a file")
    with pytest.raises(ConfigError, match=f"{name} is (a|not a) folder"):
        Store(store.root, SETTINGS, force=True)


def test_an_out_folder_in_a_symlink_loop_is_refused(tmp_path):
    from emotiscope.batchstore import Store
    from emotiscope.errors import ConfigError

    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ConfigError, match="cannot use --out"):
        Store(tmp_path / "loop", SETTINGS)


def test_damaged_done_lines_are_skipped_counted_and_their_files_redone(tmp_path):
    from emotiscope.batchstore import Store

    store, photo = store_with_one_file(tmp_path)
    good = (store.done_list).read_text()
    record = json.loads(good)
    bad = [{"x": 1}, [1], None, {k: v for k, v in record.items() if k != "size"},
           {**record, "part": 5}, {**record, "size": "1"}]
    store.done_list.write_text("".join(json.dumps(b) + "\n" for b in bad) + good)
    with open(store.done_list, "ab") as fh:
        fh.write(b"\xff\xfe\x00\x80 gar\x0cba\x1cge\r\n")  # one line: JSON lines end at \n only
    again = Store(store.root, SETTINGS)
    assert again.damaged_lines == 7 and again.is_done(photo)
    store.done_list.write_text(json.dumps({**record, "part": 5}) + "\n")
    assert not Store(store.root, SETTINGS).is_done(photo)


def test_a_cut_last_line_is_not_counted_and_the_next_record_starts_a_new_line(tmp_path):
    from emotiscope.batchstore import Store

    store, photo = store_with_one_file(tmp_path)
    with open(store.done_list, "a") as fh:
        fh.write('{"path": "cut sh')
    again = Store(store.root, SETTINGS)
    assert again.damaged_lines == 0
    other = tmp_path / "b.jpg"
    other.write_bytes(b"y")
    again.add(other, no_face(other))
    last = Store(store.root, SETTINGS)
    assert last.is_done(photo) and last.is_done(other) and last.damaged_lines == 0


def test_resuming_a_long_done_list_keeps_little_per_file(tmp_path):
    # done.jsonl was read whole, decoded and split, and every record kept as a dict: ~1.5 KB a
    # done file at the peak (15 GB to resume 10M files); now ~400 bytes
    import tracemalloc

    from emotiscope.batchstore import Store

    store, photo = store_with_one_file(tmp_path)
    record = json.loads(store.done_list.read_text())
    lines = (json.dumps({**record, "path": f"/archive/2024/folder{i // 100:04d}/photo_{i:08d}.jpg",
                         "file": f"archive/2024/folder{i // 100:04d}/photo_{i:08d}.jpg"}) + "\n"
             for i in range(5000))
    with open(store.done_list, "a") as fh:
        fh.writelines(lines)
    tracemalloc.start()
    try:
        again = Store(store.root, SETTINGS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(again.done) == 5001 and again.is_done(photo)
    assert peak / 5001 < 700


@pytest.mark.parametrize("damage", ["missing", "empty", "cut"])
def test_a_done_file_whose_part_is_missing_or_cut_is_not_done(tmp_path, damage):
    from emotiscope.batchstore import Store

    store, photo = store_with_one_file(tmp_path)
    part = next(store.parts.iterdir())
    if damage == "missing":
        part.unlink()
    else:
        part.write_bytes(part.read_bytes()[:0 if damage == "empty" else 40])
    assert not Store(store.root, SETTINGS).is_done(photo)


def test_read_rows_names_a_corrupt_part(tmp_path):
    from emotiscope.batchstore import read_rows
    from emotiscope.errors import DataError

    store, _ = store_with_one_file(tmp_path)
    assert read_rows(store.root).num_rows == 1
    part = next(store.parts.iterdir())
    part.write_bytes(b"not parquet at all, not at all")
    with pytest.raises(DataError, match=f"{part.name} is not a readable Parquet part") as err:
        read_rows(store.root)
    assert "\n" not in str(err.value)


def test_batch_says_once_that_damaged_done_lines_were_skipped(media, flags, tmp_path, capsys):
    out = tmp_path / "out"
    assert batch([media / "grey.png"], out, flags) == 0
    with open(out / "done.jsonl", "a") as fh:
        fh.write('{"x": 1}\n[1]\n')
    capsys.readouterr()
    assert batch([media / "grey.png"], out, flags) == 0
    err = capsys.readouterr().err
    assert err.count("2 damaged line(s)") == 1


def test_empty_binary_and_nested_path_lists_say_what_is_wrong(tmp_path, monkeypatch):
    from emotiscope.batch import collect_inputs

    monkeypatch.chdir(tmp_path)
    Path("empty.txt").write_text("# nothing yet\n\n")
    Path("binary.txt").write_bytes(bytes(range(256)) * 2)
    Path("self.txt").write_text("@self.txt\n")
    found, failures = collect_inputs(["@empty.txt", "@binary.txt", "@self.txt"])
    assert found == []
    reasons = dict(failures)
    assert reasons["@empty.txt"].startswith("empty.txt holds no paths")
    assert reasons["@binary.txt"].startswith("binary.txt is not a text file of paths")
    assert "@lists within @lists are not followed" in reasons["@self.txt"]
    assert all("\n" not in reason for reason in reasons.values())


def test_a_long_video_is_written_as_it_goes_with_little_held_per_face_frame(tmp_path, monkeypatch):
    # a video's rows were all held as dicts (~700 bytes a face-frame) in the worker until it was
    # done, then sent whole to the main process: an hour at 30 fps with 5 faces took ~400 MB in
    # each; now they become Arrow columns 2048 rows at a time and stream into the part
    import tracemalloc
    from types import SimpleNamespace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from emotiscope import batchparts, videoanalysis, videoread
    from emotiscope.batch import VideoSettings, analyse_file
    from emotiscope.batchparts import schema, temp_prefix
    from emotiscope.batchstore import Store
    from emotiscope.types import Box

    labels, frames = ("happy", "sad"), 8000

    def face(k: int, i: int):
        return SimpleNamespace(box=Box(10 * k, i % 50, 30, 30), label=labels[i % 2], score=0.75,
                               scores={"happy": 0.75, "sad": 0.25}, assumed=False, track_id=k)

    class Source:  # a long video, frames made as asked
        fps, damage = 30.0, None

        def __init__(self, path, max_pixels=None) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    class Analyzer:
        def __init__(self, recognizer, **settings) -> None:
            pass

        def run(self, source, fps):
            for i in range(frames):
                yield SimpleNamespace(time=i / fps, index=i, faces=[face(k, i) for k in range(5)])

    monkeypatch.setattr(videoread, "VideoSource", Source)
    monkeypatch.setattr(videoanalysis, "VideoAnalyzer", Analyzer)
    monkeypatch.setattr(batchparts, "ROW_GROUP_ROWS", 10000)
    clip = tmp_path / "long.avi"
    clip.write_bytes(b"x")
    store = Store(tmp_path / "out", SETTINGS)
    recognizer = SimpleNamespace(labels=labels, max_pixels=None)
    tracemalloc.start()
    try:
        result = analyse_file(recognizer, str(clip), VideoSettings(), temp_prefix(store.parts))
        assert store.add(clip, result) == 5 * frames
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.table is None  # only the part's name crossed to the main process
    assert peak / (5 * frames) < 150
    (name,) = store.parts.iterdir()  # the part alone: no temporary part left behind
    part = pq.ParquetFile(name)
    assert part.metadata.num_row_groups == 4  # written 10000 rows at a time
    expected = pa.Table.from_pylist(
        [{"file": str(clip), "face": k + 1, "time": i / 30.0, "frame": i, "track_id": k,
          "x": 10 * k, "y": i % 50, "w": 30, "h": 30, "label": labels[i % 2], "score": 0.75,
          "happy": 0.75, "sad": 0.25, "assumed": False} for i in range(frames) for k in range(5)],
        schema=schema(labels))
    assert part.read().equals(expected)


def test_a_full_disk_stops_the_run_in_one_line_and_fails_no_file(media, flags, tmp_path,
                                                                  monkeypatch, capsys):
    # the part is written in the worker now: a full disk became each file's own failure, and
    # the run went on analysing every file it could not keep (it stopped before, as it does now)
    import errno

    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    out = tmp_path / "out"
    assert batch([media / "grey.png", media / "sample.jpg"], out, flags, "--workers", "1") == 1
    err = capsys.readouterr().err
    assert "emotiscope batch: error: cannot write" in err and "No space left" in err
    assert "failed" not in err and not (out / "failures.json").exists()
    assert list((out / "parts").iterdir()) == []  # no temporary part left behind


def test_temporary_parts_are_not_parquet_names_and_none_outlives_the_run(tmp_path, monkeypatch):
    # a worker that crashed (or was stopped with the pool) left its file's temporary part, and
    # the other workers' finished ones, as .part.*.tmp.parquet: a name DuckDB's
    # 'parts/*.parquet' reads (it does not skip hidden files), cut short
    from types import SimpleNamespace

    from emotiscope import batchengines
    from emotiscope.batch import VideoSettings
    from emotiscope.batchparts import write_temp_part

    made = []

    def crash(recognizer, path, settings, temp):  # a part written, its result never sent
        made.append(write_temp_part([[{"file": path, "face": None}]], ("happy",), temp)[0])
        raise RuntimeError("the worker died")

    monkeypatch.setattr(batchengines, "make_recognizer", lambda *a, **k: SimpleNamespace())
    monkeypatch.setattr(batchengines, "analyse_file", crash)
    parts = tmp_path / "parts"
    parts.mkdir()
    with pytest.raises(RuntimeError):
        list(batchengines.local_results(["a.jpg"], None, VideoSettings(), 1, parts))
    (tmp,) = made
    assert tmp.parent == parts and tmp.name.startswith(".") and not tmp.name.endswith(".parquet")
    assert list(parts.iterdir()) == []


def _pipe(monkeypatch, data: bytes, tty: bool = False) -> None:
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO(data))
    monkeypatch.setattr(stdin, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdin", stdin)


@pytest.mark.parametrize("given", [["--from-file", "-"], ["@-"]])
def test_a_list_of_paths_piped_in_as_find_gives_it(given, media, flags, tmp_path, monkeypatch):
    _pipe(monkeypatch, f"{media / 'sample.jpg'}\n{media / 'grey.png'}\n".encode())
    assert batch(given, tmp_path / "out", flags, "--workers", "1") == 0
    assert {r["file"] for r in rows(tmp_path / "out")} == {str(media / "sample.jpg"),
                                                           str(media / "grey.png")}


def test_stdin_lists_that_cannot_be_used_say_why(media, flags, tmp_path, monkeypatch, capsys):
    from emotiscope.batch import collect_inputs

    for data, tty, said in ((b"", False, "standard input holds no paths"),
                            (b"\0\1", False, "standard input is not a text file of paths"),
                            (b"", True, "must be piped in")):
        _pipe(monkeypatch, data, tty)
        found, failures = collect_inputs(["@-"])
        assert found == [] and said in failures[0][1] and "\n" not in failures[0][1], said
    _pipe(monkeypatch, f"{media / 'grey.png'}\n".encode())
    assert batch(["@-", "--from-file", "-"], tmp_path / "out", flags) == 2
    assert "more than once" in capsys.readouterr().err and not (tmp_path / "out").exists()
