from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import videos

from emotiscope.cli import main
from emotiscope.commands import webcam
from emotiscope.types import Box, FaceEmotion
from emotiscope.videowrite import h264_available

FRAMES = 20


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    """A short video standing in for a camera (read in real time, 30 fps)."""
    folder = tmp_path_factory.mktemp("camera")
    return videos.write_video(folder / "cam.avi", videos.two_face_frames(FRAMES), fps=30)


def cam(args, model) -> list[str]:
    return ["webcam", *map(str, args), "--model", str(model)]


def test_headless_run_records_every_camera_frame(camera_file, tiny_model_path, tmp_path,
                                                 capsys):
    out = tmp_path / "rec.mp4"
    assert main(cam(["--camera", camera_file, "--no-window", "--record", out],
                    tiny_model_path)) == 0
    err = capsys.readouterr().err
    assert f"of {FRAMES} from" in err and "recording saved" in err
    # each frame at its own time (H.264), or repeated over skipped ones: the camera's timing
    if h264_available():
        times, duration = videos.frame_times(out)
        assert times[0] == 0 and times == sorted(set(times))
        assert duration == pytest.approx(FRAMES / 30, abs=0.01)
    else:
        assert videos.count_frames(out) == FRAMES


class FakeWriter:
    def __init__(self, takes_times: bool) -> None:
        self.takes_times, self.written = takes_times, []

    def write(self, frame, time=None) -> None:
        self.written.append((int(frame[-1, -1, 0]), time))  # a corner the banner leaves alone

    def close(self, at_source_end: bool = False) -> None:
        pass


class FakeCamera:
    """Frames captured at indexes 2, 3 and 6 (the others skipped), 0.1 s apart from 5.0 s."""

    class source:
        is_file = False

    def __init__(self) -> None:
        self.left = [(np.full((120, 160, 3), 10 * i, np.uint8), i, 5.0 + 0.1 * i) for i in (2, 3, 6)]

    def latest(self, timeout):
        return self.left.pop(0) if self.left else None


class NoFaces:
    labels = ("happy", "sad")

    def process(self, frame, now):
        return [], None


def test_shown_views_are_recorded_at_their_times_or_held_over_skipped_frames():
    from emotiscope.videoanalysis import BackgroundWriter

    timed, fixed = FakeWriter(True), FakeWriter(False)
    for writer in (timed, fixed):
        recorder = BackgroundWriter(writer, lambda shown: shown.image)
        stats = webcam._loop(FakeCamera(), NoFaces(), recorder, False, Path("."))
        recorder.close()
        assert stats["shown"] == 3 and stats["captured"] == 7
    assert timed.written == [(20, 0.0), (30, pytest.approx(0.1)), (60, pytest.approx(0.4))]
    assert [v for v, _ in fixed.written] == [20, 20, 20, 30, 30, 30, 60]  # 7 captured frames


def test_recording_is_not_overwritten(camera_file, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "rec.avi"
    out.write_bytes(b"old")
    assert main(cam(["--camera", camera_file, "--no-window", "--record", out],
                    tiny_model_path)) == 1
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"old"


def test_recording_over_the_input_video_is_refused(camera_file, tiny_model_path, tmp_path,
                                                   capsys):
    source = tmp_path / "cam.avi"
    source.write_bytes(camera_file.read_bytes())
    assert main(cam(["--camera", source, "--no-window", "--record", source, "--force"],
                    tiny_model_path)) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert source.read_bytes() == camera_file.read_bytes()


def test_recording_in_a_format_we_cannot_write_is_an_output_error(camera_file, tiny_model_path,
                                                                   tmp_path, capsys):
    """A bad output suffix exits 1 (OutputError) in `video -o`'s words, before the camera
    is opened (camera 97 does not exist, so only an early check names the suffix)."""
    out = tmp_path / "rec.mkv"
    for camera in (camera_file, "97"):
        assert main(cam(["--camera", camera, "--no-window", "--record", out],
                        tiny_model_path)) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and not out.exists()
        assert f"--record {out}: unsupported extension; use .mp4 or .avi" in err[0]


def test_a_truncated_video_file_is_reported_like_video_does(camera_file, tiny_model_path,
                                                            tmp_path, capsys):
    half, out = tmp_path / "half.avi", tmp_path / "rec.avi"
    data = camera_file.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    assert main(cam(["--camera", half, "--no-window", "--record", out], tiny_model_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "is damaged: the file is shorter than its own header says (truncated)" in err[-1]
    assert 0 < videos.count_frames(out) < FRAMES


def test_no_camera(tiny_model_path, capsys):
    assert main(cam(["--camera", "97", "--no-window"], tiny_model_path)) == 1
    err = capsys.readouterr().err
    assert "cannot open camera 97" in err and len(err.strip().splitlines()) == 1


def test_a_photo_is_not_a_camera(tiny_model_path, tmp_path, capsys):
    from emotiscope.images import encode_image

    photo = tmp_path / "face.jpg"
    photo.write_bytes(encode_image(np.zeros((60, 80, 3), np.uint8), ".jpg"))
    assert main(cam(["--camera", photo, "--no-window"], tiny_model_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a photo (JPEG)" in err[0] and "emotiscope predict" in err[0]


def test_disconnect_mid_stream_keeps_the_recording(camera_file, tiny_model_path, tmp_path,
                                                   monkeypatch, capsys):
    monkeypatch.setattr("emotiscope.videoread.is_url", lambda source: True)  # a "stream" that stops
    out = tmp_path / "rec.avi"
    assert main(cam(["--camera", camera_file, "--no-window", "--record", out],
                    tiny_model_path)) == 1
    err = capsys.readouterr().err
    assert "stopped sending frames" in err and "complete up to there" in err
    assert videos.count_frames(out) == FRAMES


def test_window_without_gui_support_says_what_to_install(camera_file, tiny_model_path,
                                                         monkeypatch, capsys):
    monkeypatch.setattr("cv2.getBuildInformation", lambda: "  GUI:      NONE\n")
    assert main(cam(["--camera", camera_file], tiny_model_path)) == 1
    err = capsys.readouterr().err
    assert "pip install \"opencv-python==" in err and "emotiscope serve" in err


def test_gui_problem(monkeypatch):
    monkeypatch.setattr("cv2.getBuildInformation", lambda: "  GUI:      GTK3\n")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "DISPLAY" in webcam.gui_problem()
    monkeypatch.setenv("DISPLAY", ":0")
    assert webcam.gui_problem() is None


def face(side: int, label: str = "joy") -> FaceEmotion:
    return FaceEmotion(Box(10, 40, side, side), label, {label: 0.8, "calm": 0.2})


def test_main_face_is_the_largest():
    assert webcam.main_face([face(20), face(60, "calm"), face(30)]).label == "calm"
    assert webcam.main_face([]) is None


def test_banner_darkens_the_top_only():
    image = np.full((240, 320, 3), 200, np.uint8)
    out = webcam.draw_banner(image.copy(), [face(50)], fps=29.7)
    assert out[-1].mean() == 200  # untouched below the banner
    assert out[:10].mean() < 150  # darkened strip with text
    empty = webcam.draw_banner(image.copy(), [], fps=0.0)
    assert not np.array_equal(out[:30], empty[:30])  # says something different with no face


def test_window_keys(monkeypatch, tmp_path, capsys):
    import cv2

    keys = iter([ord("s"), -1, ord("q"), 27])
    monkeypatch.setattr(cv2, "imshow", lambda name, image: None)
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
    view = np.full((48, 64, 3), 90, np.uint8)
    assert webcam._window(view, tmp_path) is False  # s: snapshot, keep going
    snaps = list(tmp_path.glob("emotiscope-*.png"))
    assert len(snaps) == 1 and str(snaps[0]) in capsys.readouterr().err
    assert webcam._window(view, tmp_path) is False  # no key
    assert webcam._window(view, tmp_path) is True  # q
    assert webcam._window(view, tmp_path) is True  # Esc
    monkeypatch.setattr(cv2, "waitKey", lambda delay: -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 0.0)
    assert webcam._window(view, tmp_path) is True  # window closed with the mouse
