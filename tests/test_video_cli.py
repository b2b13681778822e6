from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import videos

from emotiscope.cli import main
from emotiscope.timeline import BASE_COLUMNS

FRAMES = 24


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-clips")
    two = videos.write_video(folder / "two.avi", videos.two_face_frames(FRAMES))
    data = two.read_bytes()
    (folder / "half.avi").write_bytes(data[: len(data) // 2])
    (folder / "codec.avi").write_bytes(data.replace(b"MJPG", b"QQQQ"))
    (folder / "noise.mp4").write_bytes(b"\x00\x01garbage" * 500)
    import cv2

    cv2.VideoWriter(str(folder / "zero.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 15,
                    (320, 240)).release()
    return {"two": two, "pan": videos.write_video(folder / "pan.mp4", videos.pan_frames(FRAMES)),
            **{name: folder / f"{name}.{ext}" for name, ext in
               [("half", "avi"), ("codec", "avi"), ("noise", "mp4"), ("zero", "avi")]}}


def video(args, model) -> list[str]:
    return ["video", *map(str, args), "--model", str(model)]


def test_outputs_have_one_entry_per_frame(clips, tiny_model_path, tmp_path, capsys):
    out, rows, plot = tmp_path / "a.mp4", tmp_path / "t.csv", tmp_path / "t.png"
    code = main(video([clips["two"], "-o", out, "--csv", rows, "--plot", plot], tiny_model_path))
    printed = capsys.readouterr().out
    assert code == 0
    assert videos.count_frames(out) == FRAMES
    table = list(csv.reader(rows.open()))
    from emotiscope.classify import EmotionClassifier

    labels = EmotionClassifier(tiny_model_path).labels
    assert table[0] == [*BASE_COLUMNS, *labels]
    body = table[1:]
    assert len(body) == 2 * FRAMES  # two faces in every frame
    assert sorted({int(r[1]) for r in body}) == list(range(FRAMES))
    assert {r[2] for r in body} == {"1", "2"}
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "2 people in 1.6 s of video" in printed and "#1: 1.6 s seen" in printed


def test_json_lines_and_summary(clips, tiny_model_path, capsys):
    assert main(video([clips["pan"], "--json", "--detect-every", "2", "--smooth", "0"],
                      tiny_model_path)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    faces, summary = lines[:-1], lines[-1]
    assert len(faces) == FRAMES and [f["frame"] for f in faces] == list(range(FRAMES))
    assert {f["track_id"] for f in faces} == {1}
    assert summary["frames"] == FRAMES and summary["summary"][0]["track_id"] == 1
    assert sum(summary["summary"][0]["shares"].values()) == pytest.approx(1.0, abs=1e-3)


def test_mp4_output_is_h264_with_the_input_sound(tiny_model_path, tmp_path, capsys):
    av = pytest.importorskip("av")
    source = videos.write_video_with_sound(tmp_path / "talk.mp4", videos.two_face_frames(FRAMES))
    out = tmp_path / "annotated.mp4"
    assert main(video([source, "-o", out], tiny_model_path)) == 0
    assert "note:" not in capsys.readouterr().err
    with av.open(str(out)) as container:
        (picture,), (sound,) = container.streams.video, container.streams.audio
        assert picture.codec_context.name == "h264" and picture.format.name == "yuv420p"
        assert picture.frames == FRAMES
        seconds = float(sound.duration * sound.time_base)
        assert seconds == pytest.approx(FRAMES / 15, abs=0.1)
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: the index comes first


def test_mp4_without_pyav_falls_back_to_mp4v_and_says_so(clips, tiny_model_path, tmp_path,
                                                         monkeypatch, capsys):
    from emotiscope import videowrite as encode

    monkeypatch.setattr(encode, "h264_available", lambda: False)
    out = tmp_path / "a.mp4"
    assert main(video([clips["pan"], "-o", out], tiny_model_path)) == 0
    assert "pip install av" in capsys.readouterr().err
    import cv2

    cap = cv2.VideoCapture(str(out))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    cap.release()
    assert fourcc in ("mp4v", "FMP4") and videos.count_frames(out) == FRAMES  # MPEG-4 Part 2


def test_passers_by_stay_in_the_rows_but_not_in_the_summary(tiny_model_path, tmp_path, capsys):
    frames = videos.two_face_frames(FRAMES)  # the second face leaves after 6 frames (0.4 s)
    clip = videos.write_video(tmp_path / "brief.avi",
                              frames[:6] + [_without_right_face(f) for f in frames[6:]])
    rows, plot = tmp_path / "t.csv", tmp_path / "t.png"
    assert main(video([clip, "--csv", rows, "--plot", plot], tiny_model_path)) == 0
    out, err = capsys.readouterr()
    assert "1 person in 1.6 s of video (1 more seen for under 1 s" in out
    assert "#2" not in out
    assert {r.split(",")[2] for r in rows.read_text().splitlines()[1:]} == {"1", "2"}
    assert "fps)" in err and "processed 24 frames" in err
    assert main(video([clip, "--json", "--min-seconds", "0"], tiny_model_path)) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert len(summary["summary"]) == 2 and summary["hidden_tracks"] == 0
    assert summary["processing_fps"] > 0


def _without_right_face(frame):
    frame = frame.copy()
    frame[:, 160:] = videos.canvas()[:, 160:]
    return frame


def test_existing_output_is_refused_without_force(clips, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "a.avi"
    out.write_bytes(b"keep me")
    assert main(video([clips["pan"], "-o", out], tiny_model_path)) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(video([clips["pan"], "-o", out, "--force"], tiny_model_path)) == 0
    assert videos.count_frames(out) == FRAMES


@pytest.mark.parametrize("name, message", [
    ("missing", "does not exist"), ("noise", "cannot open video"),
    ("codec", "cannot open video"), ("zero", "no decodable frames"),
    ("/dev/zero", "is a device"), ("folder", "is a folder")])
def test_unusable_input(clips, tiny_model_path, tmp_path, capsys, name, message):
    if name == "/dev/zero" and not Path(name).exists():
        pytest.skip("no /dev/zero here")
    source = {"/dev/zero": Path(name), "folder": tmp_path}.get(name) or clips.get(
        name, tmp_path / "missing.mp4")
    assert main(video([source, "--csv", tmp_path / "t.csv"], tiny_model_path)) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_truncated_input_keeps_what_was_read(clips, tiny_model_path, tmp_path, capsys):
    out, rows = tmp_path / "a.avi", tmp_path / "t.csv"
    assert main(video([clips["half"], "-o", out, "--csv", rows], tiny_model_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "truncated" in err[-1] and len(err) <= 3  # "processed ...", "wrote ...", the error
    read = videos.count_frames(clips["half"])
    assert 0 < read < FRAMES
    assert videos.count_frames(out) == read
    assert len(rows.read_text().splitlines()) == 1 + 2 * read


def test_a_skipped_frame_keeps_the_times_and_the_length(clips, tiny_model_path, tmp_path,
                                                       capsys):
    from test_videoio import damage_frames

    hole = damage_frames(clips["two"], tmp_path / "hole.avi", 6)
    out, rows = tmp_path / "a.avi", tmp_path / "t.csv"
    assert main(video([hole, "-o", out, "--csv", rows], tiny_model_path)) == 1
    printed = capsys.readouterr()
    err = printed.err.strip().splitlines()
    assert "1 frame(s) could not be decoded" in err[-1] and "repeats the frame before" in err[-1]
    assert videos.count_frames(out) == FRAMES  # the gap is held, the length kept
    # the video's length, as written, not the frames that could be read
    assert f"processed {FRAMES - 1} frames" in err[-3] and err[-2].endswith(f"({FRAMES} frames)")
    assert f"in {FRAMES / 15:.1f} s of video" in printed.out
    assert main(video([hole, "--json"], tiny_model_path)) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["frames"] == FRAMES and summary["seconds"] == round(FRAMES / 15, 3)
    table = list(csv.DictReader(rows.open()))
    assert sorted({int(r["frame"]) for r in table}) == [k for k in range(FRAMES) if k != 6]
    assert {float(r["time"]) for r in table if r["frame"] == "7"} == {round(7 / 15, 3)}


def test_an_overestimated_frame_count_is_not_a_failure(clips, tiny_model_path, tmp_path,
                                                       monkeypatch, capsys):
    from test_videoio import overcounting

    overcounting(monkeypatch)
    rows = tmp_path / "t.csv"
    assert main(video([clips["two"], "--csv", rows], tiny_model_path)) == 0
    assert "damaged" not in capsys.readouterr().err
    assert len(rows.read_text().splitlines()) == 1 + 2 * FRAMES


def test_failure_mid_video_leaves_valid_outputs(clips, tiny_model_path, tmp_path, monkeypatch,
                                                capsys):
    from emotiscope.videoanalysis import VideoAnalyzer
    from emotiscope.videowrite import h264_available

    original = VideoAnalyzer.process

    def failing(self, image, time):
        if self._count == 10:
            raise KeyboardInterrupt
        return original(self, image, time)

    monkeypatch.setattr(VideoAnalyzer, "process", failing)
    out, rows = tmp_path / "a.mp4", tmp_path / "t.csv"
    assert main(video([clips["two"], "-o", out, "--csv", rows], tiny_model_path)) == 130
    assert videos.count_frames(out) == 10  # a playable file with the frames done
    if h264_available():  # the last one lasts 1/fps, not up to the source's end
        assert videos.frame_times(out)[1] == pytest.approx(10 / 15)
    assert len(rows.read_text().splitlines()) == 1 + 2 * 10


@pytest.mark.parametrize("flags, message", [
    (["-o", "{tmp}/none/a.mp4"], "folder"), (["-o", "{tmp}/a.mkv"], "use .mp4 or .avi"),
    (["--detect-every", "0"], "--detect-every"), (["--smooth", "-1"], "--smooth"),
    (["-o", "{tmp}/a.mp4", "--csv", "{tmp}/a.mp4"], "different files"),
    (["--csv", "-"], "use --json for the rows on stdout")])
def test_bad_options(clips, tiny_model_path, tmp_path, capsys, flags, message):
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    assert main(video([clips["pan"], *flags], tiny_model_path)) in (1, 2)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.bin", "renamed.jpg"])
def test_a_photo_points_to_predict(tiny_model_path, tmp_path, capsys, name):
    import cv2
    import numpy as np

    photo = tmp_path / name
    image = np.full((60, 80, 3), 128, np.uint8)
    data = cv2.imencode(".png" if name.endswith(".png") else ".jpg", image)[1].tobytes()
    photo.write_bytes(b"not an image at all" if name == "renamed.jpg" else data)
    assert main(video([photo, "--csv", tmp_path / "t.csv"], tiny_model_path)) == 2
    err = capsys.readouterr().err.strip()
    assert "is a photo" in err and f"emotiscope predict {photo}" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("flag, name, message", [
    ("-o", "a.mkv", "unsupported extension; use .mp4 or .avi"),
    ("--plot", "t.bmp", "matplotlib cannot write .bmp charts"),
])
def test_an_output_in_a_format_we_cannot_write_is_refused_first(clips, tiny_model_path, tmp_path,
                                                                capsys, flag, name, message):
    """A bad output suffix is an output error (exit 1) for -o as for --plot and `data --out`,
    found before any work, so nothing is written."""
    rows, out = tmp_path / "t.csv", tmp_path / name
    assert main(video([clips["pan"], "--csv", rows, flag, out], tiny_model_path)) == 1
    assert f"{flag} {out}: {message}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_output_over_input_is_refused(clips, tiny_model_path, capsys):
    assert main(video([clips["pan"], "-o", clips["pan"], "--force"], tiny_model_path)) == 2
    assert "overwrite the input" in capsys.readouterr().err


def test_a_name_too_long_is_refused_before_the_analysis(clips, tiny_model_path, tmp_path,
                                                        capsys, monkeypatch):
    import emotiscope.commands.video as command

    monkeypatch.setattr(command, "make_analyzer", lambda args: pytest.fail("analysed first"))
    out = tmp_path / ("x" * 252 + ".mp4")
    assert main(video([clips["pan"], "-o", out], tiny_model_path)) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "its name is too long (256 bytes" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full(clips, tiny_model_path, capsys):
    assert main(video([clips["pan"], "--csv", "/dev/full", "--force"], tiny_model_path)) == 1
    err = capsys.readouterr().err
    assert "No space left" in err and len(err.strip().splitlines()) == 1


def test_subprocess(clips, tiny_model_path, tmp_path):
    rows = tmp_path / "t.csv"
    done = subprocess.run([sys.executable, "-m", "emotiscope.cli",
                           *video([clips["pan"], "--csv", rows], tiny_model_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 person" in done.stdout
    assert len(rows.read_text().splitlines()) == 1 + FRAMES


def test_a_variable_frame_rate_video_has_its_own_times(tiny_model_path, tmp_path, capsys):
    times = [0.0, 0.1, 0.5, 0.6, 0.7, 1.3]  # as a phone records: the rate varies
    path = videos.write_timed_video(tmp_path / "phone.mp4", videos.two_face_frames(6), times)
    rows = tmp_path / "t.csv"
    assert main(video([path, "--csv", rows], tiny_model_path)) == 0
    table = list(csv.DictReader(rows.open()))
    assert {(int(r["frame"]), r["time"]) for r in table} == {
        (i, f"{t:.3f}") for i, t in enumerate(times)}
    capsys.readouterr()
    assert main(video([path, "--json"], tiny_model_path)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["time"] for r in lines[:-1]} == set(times)
    assert lines[-1]["seconds"] >= 1.3  # through the last frame's own time


def test_the_annotated_copy_of_a_variable_rate_video_keeps_its_times(tiny_model_path, tmp_path,
                                                                     capsys):
    av = pytest.importorskip("av")
    # a phone's rate: 30 fps, then 10 fps for a second, then 30 fps again; with its sound
    times = [k / 30 for k in range(10)] + [1 / 3 + k / 10 for k in range(10)] + [
        4 / 3 + k / 30 for k in range(10)]
    source = videos.write_timed_video(tmp_path / "phone.mp4", videos.pan_frames(30), times,
                                      sound=True)
    out = tmp_path / "annotated.mp4"
    assert main(video([source, "-o", out], tiny_model_path)) == 0

    def timing(path):
        with av.open(str(path)) as container:
            picture, sound = container.streams.video[0], container.streams.audio[0]
            shown = sorted(float(f.pts * f.time_base) for f in container.decode(picture))
            return (shown, float(picture.duration * picture.time_base),
                    float(sound.duration * sound.time_base), float(picture.average_rate))

    shown, seconds, sound, _ = timing(out)
    _, source_seconds, _, fps = timing(source)
    assert shown == pytest.approx(times, abs=0.001)  # not k / fps: frames 10-19 came late
    # the last frame lasts as long as in the source (0.1 s), not 1/fps (the average rate)
    assert seconds == pytest.approx(source_seconds, abs=0.001) and 1 / fps < 0.07
    assert sound == pytest.approx(seconds, abs=0.03)
