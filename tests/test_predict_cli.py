from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotiscope.cli import main
from emotiscope.images import encode_image, load_image, sample_image_path
from emotiscope.outputs import display

SAMPLE = str(sample_image_path())


@pytest.fixture
def model_args(tiny_model_path):
    return ["--model", str(tiny_model_path), "--detector", "haar"]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines(capsys, model_args):
    assert main(["predict", SAMPLE, "--json", *model_args]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["face"] for r in rows] == [1, 2]
    for row in rows:
        assert set(row) == {"file", "face", "box", "label", "score", "scores", "assumed"}
        assert row["assumed"] is False
        assert row["file"] == SAMPLE and set(row["box"]) == {"x", "y", "w", "h"}
        assert len(row["scores"]) == 7 and row["scores"][row["label"]] == row["score"]
    assert rows[0]["box"]["x"] < rows[1]["box"]["x"]


def test_csv_has_a_header_with_every_label(capsys, model_args, tiny_model_path):
    assert main(["predict", SAMPLE, "--csv", *model_args]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:8] == ["file", "face", "x", "y", "w", "h", "label", "score"]
    assert rows[0][-1] == "assumed" and rows[1][-1] == "0"
    assert len(rows[0]) == 16 and len(rows) == 3
    assert abs(sum(float(v) for v in rows[1][8:15]) - 1.0) < 1e-3


def test_table_and_summary(capsys, model_args):
    assert main(["predict", SAMPLE, *model_args]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["file", "face", "label", "score"] and len(lines) == 3
    assert "1 image(s), 2 face(s)" in err


def test_no_face_row_in_the_table(tmp_path, capsys, model_args):
    path = tmp_path / "blank.png"
    path.write_bytes(encode_image(np.full((300, 400, 3), 200, np.uint8), ".png"))
    assert main(["predict", str(path), *model_args]) == 0
    assert "no face" in capsys.readouterr().out


def test_no_face_is_a_json_line_and_a_csv_row(tmp_path, capsys, model_args):
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode_image(np.full((300, 400, 3), 200, np.uint8), ".png"))
    assert main(["predict", str(blank), SAMPLE, "--json", *model_args]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert rows[0] == {"file": str(blank), "face": None}
    assert [r["face"] for r in rows[1:]] == [1, 2]
    assert main(["predict", str(blank), "--csv", *model_args]) == 0
    header, row = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(row) == len(header) and row[0] == str(blank) and set(row[1:]) == {""}


CROP_ARGS = ["--detector", "haar", "--min-face", "46"]  # Haar finds no face that big in 48 px


def _fer_crop(tmp_path) -> Path:
    """A 48x48 face from the FER-2013 sample when present, else one cut from the sample photo."""
    from fixtures.images import sample_faces

    from emotiscope.preprocess import resize_face

    csv_path = Path(__file__).resolve().parents[1].parent / "shared/datasets/fer2013-sample.csv"
    if csv_path.exists():
        with open(csv_path) as fh:
            pixels = next(csv.DictReader(fh))["pixels"]
        face = np.array(pixels.split(), np.uint8).reshape(48, 48)
    else:
        box = sample_faces()[0]
        face = resize_face(load_image(SAMPLE)[box.y:box.y + box.h, box.x:box.x + box.w], 48)
    path = tmp_path / "fer.png"
    path.write_bytes(encode_image(np.dstack([face] * 3), ".png"))
    return path


@pytest.mark.parametrize(("policy", "expected"), [("auto", [True]), ("always", [True]),
                                                   ("never", [None])])
def test_assume_crop_policy_on_a_fer_crop(tmp_path, capsys, tiny_model_path, policy, expected):
    path = _fer_crop(tmp_path)
    args = ["--model", str(tiny_model_path), *CROP_ARGS]
    assert main(["predict", str(path), "--json", "--assume-crop", policy, *args]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r.get("assumed") for r in rows] == expected
    if expected == [True]:
        assert rows[0]["box"] == {"x": 0, "y": 0, "w": 48, "h": 48}


def test_assumed_faces_are_marked_in_table_and_csv(tmp_path, capsys, tiny_model_path):
    path = _fer_crop(tmp_path)
    args = ["--model", str(tiny_model_path), *CROP_ARGS]
    assert main(["predict", str(path), *args]) == 0
    assert "(assumed" in capsys.readouterr().out
    assert main(["predict", str(path), "--csv", *args]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out)))[1][-1] == "1"


def test_blank_and_noise_images_are_no_face_even_when_small(tmp_path, capsys, model_args):
    rng = np.random.default_rng(0)
    images = {"grey.png": np.full((48, 48, 3), 128, np.uint8),
              "noise.png": rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)}
    for name, image in images.items():
        (tmp_path / name).write_bytes(encode_image(image, ".png"))
    assert main(["predict", str(tmp_path), "--json", *model_args]) == 0
    assert [r["face"] for r in _json_lines(capsys.readouterr().out)] == [None, None]
    assert main(["predict", str(tmp_path), "--json", "--assume-crop", "always", *model_args]) == 0
    assert [r["assumed"] for r in _json_lines(capsys.readouterr().out)] == [True, True]


def test_out_writes_annotated_copies_and_never_overwrites(tmp_path, capsys, model_args):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(Path(SAMPLE).read_bytes())
    (photos / "sub" / "b.gif").write_bytes(encode_image(np.zeros((50, 60, 3), np.uint8), ".png"))
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--out", str(out), *model_args]) == 0
    annotated = load_image(out / "a.jpg")
    assert annotated.shape == load_image(SAMPLE).shape
    assert not np.array_equal(annotated, load_image(SAMPLE))
    assert (out / "sub" / "b.gif.png").is_file()  # no GIF encoder: written as PNG
    capsys.readouterr()
    assert main(["predict", str(photos), "--out", str(out), *model_args]) == 1
    assert "already exist" in capsys.readouterr().err
    assert main(["predict", str(photos), "--out", str(out), "--force", *model_args]) == 0


def test_out_folder_inside_the_input_folder_is_not_read_again(tmp_path, capsys, model_args):
    (tmp_path / "a.jpg").write_bytes(Path(SAMPLE).read_bytes())
    for _ in range(2):
        code = main(["predict", str(tmp_path), "--out", str(tmp_path / "out"), "--force", "--json",
                     *model_args])
        assert code == 0
    out, err = capsys.readouterr()
    assert {r["file"] for r in _json_lines(out)} == {str(tmp_path / "a.jpg")}
    assert "skipped 1 file(s) in --out" in err  # the first run's copy


def test_photos_in_an_out_folder_among_the_inputs_are_read_and_never_overwritten(
        tmp_path, capsys, model_args):
    """`predict photos --out photos/best` where best/ holds photos: they are inputs like any
    other; only the copies emotiscope wrote there (and that are unchanged) are skipped, and
    it says so."""
    photos = tmp_path / "photos"
    best = photos / "best"
    best.mkdir(parents=True)
    (photos / "a.jpg").write_bytes(Path(SAMPLE).read_bytes())
    other = encode_image(load_image(SAMPLE)[:, ::-1], ".jpg")
    for name in ("a.jpg", "b.jpg"):
        (best / name).write_bytes(other)
    args = ["predict", str(photos), "--out", str(best), "--json", *model_args]
    assert main([*args, "--force"]) == 2  # photos/a.jpg's copy would replace best/a.jpg
    err = capsys.readouterr().err
    assert f"--out {best} lies among the inputs and holds {best / 'a.jpg'}, which no " in err
    assert "not overwritten" in err and "choose an --out outside" in err
    assert (best / "a.jpg").read_bytes() == other
    (best / "a.jpg").unlink()
    inputs = {str(photos / "a.jpg"), str(best / "b.jpg")}
    for force in ([], ["--force"]):  # the second run skips the first run's two copies
        assert main([*args, *force]) == 0
        out, err = capsys.readouterr()
        assert {r["file"] for r in _json_lines(out)} == inputs
        assert ("skipped 2 file(s)" in err) == bool(force)
    assert (best / "b.jpg").read_bytes() == other and (best / "best" / "b.jpg").is_file()
    (best / "a.jpg").write_bytes(other)  # a copy replaced by a photo is a photo again
    assert main([*args, "--force"]) == 2
    assert (best / "a.jpg").read_bytes() == other


def test_out_layout_follows_links_names_not_their_targets(tmp_path):
    from emotiscope.commands.predict import plan_outputs

    (tmp_path / "store").mkdir()
    (tmp_path / "photos").mkdir()
    (tmp_path / "store" / "IMG_0001.jpg").write_bytes(b"")
    (tmp_path / "photos" / "party.jpg").symlink_to(Path("..") / "store" / "IMG_0001.jpg")
    (tmp_path / "photos" / "b.jpg").write_bytes(b"")
    paths = [tmp_path / "photos" / "party.jpg", tmp_path / "photos" / "b.jpg"]
    plan = plan_outputs(paths, tmp_path / "out", False)
    assert list(plan.values()) == [tmp_path / "out" / "party.jpg", tmp_path / "out" / "b.jpg"]


def test_out_names_stay_unique_when_formats_share_a_name(tmp_path, capsys, model_args):
    """x.gif cannot be written as GIF: its copy is x.gif.png, never x.png's copy."""
    photos = tmp_path / "photos"
    photos.mkdir()
    image = load_image(SAMPLE)
    (photos / "x.png").write_bytes(encode_image(image, ".png"))
    (photos / "x.gif").write_bytes(encode_image(image[:, ::-1], ".png"))  # different content
    out = tmp_path / "out"
    for force in ([], ["--force"]):
        assert main(["predict", str(photos), "--out", str(out), *force, *model_args]) == 0
        # and the record of the copies written (.emotiscope-outputs)
        assert sorted(p.name for p in out.iterdir()) == [".emotiscope-outputs", "x.gif.png", "x.png"]
        assert not np.array_equal(load_image(out / "x.png"), load_image(out / "x.gif.png"))
    capsys.readouterr()
    assert main(["predict", str(photos), "--out", str(out), *model_args]) == 1  # no --force
    assert "2 output file(s) already exist" in capsys.readouterr().err


def test_plan_outputs_numbers_any_remaining_clash(tmp_path):
    from emotiscope.commands.predict import plan_outputs

    for name in ("x.gif", "x.gif.png"):  # both would be x.gif.png
        (tmp_path / name).write_bytes(b"")
    plan = plan_outputs([tmp_path / "x.gif", tmp_path / "x.gif.png"], tmp_path / "out", False)
    assert sorted(p.name for p in plan.values()) == ["x.gif-2.png", "x.gif.png"]


def test_out_dot_inside_the_input_folder(tmp_path, capsys, model_args, monkeypatch):
    """`predict . --out .` would replace the photos: refused in one line, nothing written.
    `predict photos --out .` from above them analyses them and writes the copies."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(Path(SAMPLE).read_bytes())
    monkeypatch.chdir(photos)
    assert main(["predict", ".", "--out", ".", *model_args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would replace the input image" in err[0] and "annotated" in err[0]
    assert main(["predict", ".", "--out", ".", "--force", *model_args]) == 2
    assert (photos / "a.jpg").read_bytes() == Path(SAMPLE).read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "photos", "--out", ".", "--json", *model_args]) == 0
    assert [r["file"] for r in _json_lines(capsys.readouterr().out)][0] == "photos/a.jpg"
    assert (tmp_path / "a.jpg").is_file()


def test_a_model_giving_nan_is_one_error_line_and_no_result(tmp_path, capsys):
    from fixtures.tiny_model import make_nan_model

    model = make_nan_model(tmp_path / "nan.onnx")
    assert main(["predict", SAMPLE, "--json", "--model", str(model), "--detector", "haar"]) == 1
    out, err = capsys.readouterr()
    assert "NaN" not in out and "nan" not in out
    assert err.strip().splitlines() == [err.strip()]
    assert "returned NaN or infinite scores" in err


def test_names_that_are_not_utf8_print_in_every_format(tmp_path, model_args):
    """A Latin-1 file name (byte 0xE9): table, JSON and CSV stay valid UTF-8, with a \\xe9."""
    folder = os.fsencode(tmp_path / "photos")
    os.mkdir(folder)
    with open(os.path.join(folder, b"caf\xe9.jpg"), "wb") as fh:
        fh.write(Path(SAMPLE).read_bytes())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONIOENCODING": "utf-8"}
    base = [sys.executable, "-m", "emotiscope.cli", "predict", str(tmp_path / "photos"), *model_args]
    for k, form in enumerate(([], ["--json"], ["--csv"])):
        done = subprocess.run(base + form + ["--out", str(tmp_path / f"out{k}")],
                              capture_output=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        text = done.stdout.decode("utf-8")  # strict: raises on invalid UTF-8
        if form == ["--json"]:
            assert json.loads(text.splitlines()[0])["file"].endswith("caf\\xe9.jpg")
        elif form == ["--csv"]:
            assert list(csv.reader(io.StringIO(text)))[1][0].endswith("caf\\xe9.jpg")
        else:
            assert "caf\\xe9.jpg" in text
    copies = sorted(os.listdir(os.fsencode(tmp_path / "out0")))
    assert copies == [b".emotiscope-outputs", b"caf\xe9.jpg"]  # the real name, and the record


@pytest.mark.parametrize("out", [False, True])
def test_a_bad_input_not_named_in_utf8_is_named_once_escaped(tmp_path, capsys, model_args, out):
    folder = os.fsencode(tmp_path / "photos")
    os.mkdir(folder)
    with open(os.path.join(folder, b"caf\xe9.jpg"), "wb") as fh:
        fh.write(b"hello")
    shown = display(os.path.join(folder, b"caf\xe9.jpg"))
    where = ["--out", str(tmp_path / "out")] if out else []
    assert main(["predict", os.fsdecode(folder), *where, *model_args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"emotiscope predict: {shown} is not an image format")
    assert err.count("caf") == 1 and "\udce9" not in err


def test_bad_inputs_fail_alone_and_the_batch_goes_on(tmp_path, capsys, model_args):
    (tmp_path / "corrupt.jpg").write_bytes(Path(SAMPLE).read_bytes()[:3000])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "no-images").mkdir()
    inputs = [str(tmp_path / name) for name in ("corrupt.jpg", "empty.png", "text.jpg",
                                                "no-images", "missing.jpg")]
    assert main(["predict", *inputs, SAMPLE, "--json", *model_args]) == 1
    out, err = capsys.readouterr()
    assert {r["file"] for r in _json_lines(out)} == {SAMPLE}
    assert "5 of 6 input(s) failed" in err
    for words in ("truncated or corrupt", "empty", "not an image", "holds no images",
                  "does not exist"):
        assert words in err


@pytest.mark.parametrize("form", [[], ["--json"]])
def test_one_bad_input_is_one_error_line_naming_the_file(tmp_path, capsys, model_args, form):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert main(["predict", str(path), *form, *model_args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # one line, the path as the subject (not "image bytes"), no "0 image(s)" summary
    assert err == [f"emotiscope predict: {path} is empty (0 bytes); it is not an image"]


def test_huge_image_is_refused_with_the_limit(tmp_path, capsys, model_args):
    path = tmp_path / "big.png"
    path.write_bytes(encode_image(np.zeros((1000, 1000, 3), np.uint8), ".png"))
    assert main(["predict", str(path), "--max-megapixels", "0.5", *model_args]) == 1
    assert "limit of 0.5 megapixels" in capsys.readouterr().err


def test_strip_png_is_refused_quickly_with_one_line(tmp_path, capsys, model_args):
    # 100000x3: enlarging it for the annotated copy once tried to allocate 5.7 GB.
    path = tmp_path / "strip.png"
    path.write_bytes(encode_image(np.zeros((3, 100_000, 3), np.uint8), ".png"))
    code = main(["predict", str(path), "--out", str(tmp_path / "out"), *model_args])
    err = capsys.readouterr().err
    assert code == 1 and "aspect ratio above 50:1" in err and "Traceback" not in err
    assert not list((tmp_path / "out").rglob("*.png"))


def test_sample_option(capsys, model_args):
    assert main(["predict", "--sample", "--json", *model_args]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == 2


@pytest.mark.parametrize("argv", [
    ["predict"],
    ["predict", SAMPLE, "--threshold", "2"],
    ["predict", SAMPLE, "--detector", "mtcnn"],
    ["predict", SAMPLE, "--min-face", "0"],
    ["predict", SAMPLE, "--max-side", "10"],
    ["predict", SAMPLE, "--json", "--csv"],
])
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_bad_model_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert main(["predict", SAMPLE, "--model", str(bad)]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().err


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "emotiscope.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_subprocess_json_and_exit_codes(tmp_path, tiny_model_path):
    done = _run("predict", SAMPLE, "--json", "--model", str(tiny_model_path), "--detector", "haar")
    assert done.returncode == 0, done.stderr
    assert len(_json_lines(done.stdout)) == 2
    missing = _run("predict", str(tmp_path / "missing.jpg"), "--model", str(tiny_model_path))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert _run("predict", "--threshold", "nan?").returncode == 2


def test_progress_bar_goes_to_stderr_and_keeps_stdout_clean(tmp_path, capsys, monkeypatch,
                                                            model_args):
    from emotiscope.commands import predict

    monkeypatch.setattr(predict, "BAR_ALWAYS", 2)
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(Path(SAMPLE).read_bytes())
    assert main(["predict", str(tmp_path), "--json", *model_args]) == 0
    out, err = capsys.readouterr()
    assert len(_json_lines(out)) == 4
    assert "image" in err  # tqdm's "2/2 [..., image/s]"


def test_urls_and_videos_get_a_one_line_pointer(tmp_path, capsys, model_args):
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(b"\0\0\0\x18ftypmp42")
    url = "https://example.com/photos/a.jpg"
    assert main(["predict", url, str(clip), SAMPLE, "--json", *model_args]) == 1
    out, err = capsys.readouterr()
    assert len(_json_lines(out)) == 2  # the photo is still analysed
    lines = err.splitlines()
    url_line = next(line for line in lines if "URL" in line)
    assert url in url_line and "download" in url_line and "first" in url_line
    video_line = next(line for line in lines if "talk.mp4" in line)
    assert f"emotiscope video {clip}" in video_line


@pytest.mark.parametrize("record", ["link to a photo", "dangling link", "folder"])
def test_a_record_that_is_no_regular_file_is_refused_before_any_copy(tmp_path, capsys,
                                                                      model_args, record):
    photo, out = tmp_path / "a.jpg", tmp_path / "out"
    photo.write_bytes(Path(SAMPLE).read_bytes())
    out.mkdir()
    log = out / ".emotiscope-outputs"
    if record == "folder":
        log.mkdir()
    else:
        log.symlink_to("../a.jpg" if record == "link to a photo" else "../victim")
    assert main(["predict", str(photo), "--out", str(out), "--json", *model_args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"its record {log} is " in err
    assert photo.read_bytes() == Path(SAMPLE).read_bytes()  # nothing appended to the photo
    assert not (tmp_path / "victim").exists() and sorted(os.listdir(out)) == [log.name]


def test_a_record_line_with_a_nul_byte_is_ignored(tmp_path, capsys, model_args):
    (tmp_path / ".emotiscope-outputs").write_bytes(b"a" * 64 + b"  x\x00y\n")
    assert main(["predict", SAMPLE, "--out", str(tmp_path), "--json", *model_args]) == 0


@pytest.mark.parametrize("where", ["out", "copy"])
def test_a_symlink_loop_in_out_is_one_line(tmp_path, capsys, model_args, where):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(Path(SAMPLE).read_bytes())
    out = tmp_path / "lo" if where == "out" else tmp_path / "out"
    if where == "out":
        out.symlink_to("lo")
    else:  # the planned copy itself is a link to itself
        out.mkdir()
        (out / "a.jpg").symlink_to("a.jpg")
    assert main(["predict", str(photo), "--out", str(out), "--force", *model_args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "symlink loop" in err


def test_a_refused_rerun_says_only_why(tmp_path, capsys, model_args):
    (tmp_path / "a.jpg").write_bytes(Path(SAMPLE).read_bytes())
    (tmp_path / "b.jpg").write_bytes(Path(SAMPLE).read_bytes())
    args = ["predict", str(tmp_path), "--out", str(tmp_path / "ann"), *model_args]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1  # no --force: the copies of a.jpg and b.jpg exist
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "already exist" in err and "skipped" not in err


def _pipe(monkeypatch, data: bytes, tty: bool = False) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(data))
    monkeypatch.setattr(stdin, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdin", stdin)


def test_dash_reads_one_image_from_stdin_as_the_file_would_be(capsys, model_args, monkeypatch,
                                                              tmp_path):
    assert main(["predict", SAMPLE, "--json", *model_args]) == 0
    from_file = _json_lines(capsys.readouterr().out)
    _pipe(monkeypatch, Path(SAMPLE).read_bytes())
    assert main(["predict", "-", "--json", *model_args]) == 0
    piped = _json_lines(capsys.readouterr().out)
    assert piped == [{**row, "file": "-"} for row in from_file] and len(piped) == 2
    (tmp_path / "-").write_bytes(b"not an image")  # a file named - is ./- and is not stdin
    _pipe(monkeypatch, Path(SAMPLE).read_bytes())
    assert main(["predict", "-", str(tmp_path / "-"), "--json", *model_args]) == 1
    out, err = capsys.readouterr()
    assert [r["file"] for r in _json_lines(out)] == ["-", "-"]  # the piped photo's two faces
    assert display(tmp_path / "-") in err and "not an image format" in err  # the file's error


@pytest.mark.parametrize("data, argv, code, said", [
    (b"", ["-"], 1, "standard input is empty"),
    (b"hello\n", ["-"], 1, "standard input is not an image format"),
    (b"x", ["-", "-"], 2, "given more than once"),
    (b"x", ["-", "--out", "annotated"], 2, "has no name"),
    (None, ["-"], 2, "which is a terminal"),
])
def test_dash_with_nothing_usable_on_stdin_is_one_line(data, argv, code, said, capsys, model_args,
                                                       monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _pipe(monkeypatch, data or b"", tty=data is None)
    assert main(["predict", *argv, *model_args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written, --out not made
