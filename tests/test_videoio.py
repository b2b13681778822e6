from __future__ import annotations

import itertools
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from fixtures import videos

from emotiscope.errors import InputError, OutputError, OutputExistsError
from emotiscope.outputs import check_new
from emotiscope.videolive import LatestFrameReader
from emotiscope.videoread import VideoSource, parse_source
from emotiscope.videowrite import VideoWriter


def check_output(path, force=False):
    """What the video commands check before writing a video: its folder must exist."""
    return check_new(path, force, "-o", create_folder=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    import cv2

    folder = tmp_path_factory.mktemp("clips")
    out = {"mp4": videos.write_video(folder / "pan.mp4", videos.pan_frames(20)),
           "avi": videos.write_video(folder / "pan.avi", videos.pan_frames(20))}
    avi = out["avi"].read_bytes()
    broken = {"half": ("avi", avi[: len(avi) // 2]),  # AVI: frames before the cut stay readable
              "halfmp4": ("mp4", out["mp4"].read_bytes()[:3000]),  # MP4: index at the end lost
              "codec": ("avi", avi.replace(b"MJPG", b"QQQQ")),  # a codec FFmpeg does not know
              "noise": ("mp4", np.random.default_rng(0).bytes(4000)), "empty": ("mp4", b"")}
    for name, (ext, data) in broken.items():
        out[name] = folder / f"{name}.{ext}"
        out[name].write_bytes(data)
    out["zero"] = folder / "zero.avi"
    cv2.VideoWriter(str(out["zero"]), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240)).release()
    return out


def test_parse_source(tmp_path, monkeypatch):
    assert parse_source("0") == 0 and parse_source(2) == 2 and parse_source(" 1 ") == 1
    assert parse_source("rtsp://cam/1") == "rtsp://cam/1"
    assert parse_source(Path("a.mp4")) == "a.mp4"
    monkeypatch.chdir(tmp_path)
    assert parse_source(Path("12")) == "12"  # a Path is always a file
    (tmp_path / "12").write_bytes(b"video")
    assert parse_source("12") == "12" and parse_source("0") == 0  # a file named 12 is a file


def test_a_video_file_named_with_digits_is_not_a_camera(clips, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("7").write_bytes(clips["avi"].read_bytes())
    with VideoSource("7") as source:
        assert source.is_file and sum(1 for _ in source) == 20


def test_a_slow_frame_rate_is_kept(tmp_path):
    import cv2

    path = str(tmp_path / "slow.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 0.5, (64, 48))
    for value in (0, 100, 200):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    with VideoSource(path) as source:
        assert source.fps_known and source.fps == pytest.approx(0.5)


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_source_reads_every_frame_as_rgb(clips, kind):
    with VideoSource(clips[kind]) as source:
        assert source.fps == pytest.approx(15.0) and source.fps_known
        assert source.size == (320, 240) and source.frame_count == 20
        frames = list(source)
    assert len(frames) == 20 == source.frames_read and not source.truncated
    assert frames[0].dtype == np.uint8 and frames[0].shape == (240, 320, 3)
    # the background is RGB (70, 90, 110): blue must stay the largest channel
    r, g, b = frames[0][5, 5].astype(int)
    assert abs(r - 70) < 8 and abs(b - 110) < 8


def test_truncated_avi_reads_what_is_there(clips):
    with VideoSource(clips["half"]) as source:
        n = sum(1 for _ in source)
        assert 0 < n < 20 and source.truncated
        assert "shorter than its own header" in source.damage


def overcounting(monkeypatch, extra: int = 4) -> None:
    """Make OpenCV's frame-count estimate exceed the real count, as some containers do."""
    import cv2

    from emotiscope import videoread as frames

    class Overcount:
        def __init__(self, cap):
            self._cap = cap

        def get(self, prop):
            value = self._cap.get(prop)
            return value + extra if prop == cv2.CAP_PROP_FRAME_COUNT else value

        def __getattr__(self, name):
            return getattr(self._cap, name)

    original = frames._open_capture
    monkeypatch.setattr(frames, "_open_capture", lambda source: Overcount(original(source)))


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_a_frame_count_estimate_above_the_real_count_is_not_damage(clips, kind, monkeypatch):
    overcounting(monkeypatch)
    with VideoSource(clips[kind]) as source:
        assert source.frame_count == 24
        assert sum(1 for _ in source) == 20
        assert source.damage is None and not source.truncated


def damage_frames(avi: Path, path: Path, *frames: int) -> Path:
    """A copy of an MJPG AVI in which the given frames no longer decode."""
    data = bytearray(avi.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xd8"]  # JPEG frames
    for k in frames:
        data[starts[k]:starts[k] + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
    return path


def test_an_undecodable_frame_is_skipped_and_reported(clips, tmp_path):
    path = damage_frames(clips["avi"], tmp_path / "hole.avi", 10)
    with VideoSource(path) as source:
        assert sum(1 for _ in source) == 19
        assert source.frames_skipped == 1 and "1 frame(s) could not be decoded" in source.damage


@pytest.mark.parametrize("bad", [(10,), (0,), (0, 1, 7)])
def test_frames_keep_their_place_after_a_skipped_one(clips, tmp_path, bad):
    with VideoSource(clips["avi"]) as source:
        clean = list(source)
    with VideoSource(damage_frames(clips["avi"], tmp_path / "hole.avi", *bad)) as source:
        numbered = [(index, frame) for index, _, frame in source.timed()]
        assert source.frames_skipped == len(bad)
    assert [index for index, _ in numbered] == [k for k in range(20) if k not in bad]
    for index, frame in numbered:  # each frame is the one at that place in the clean file
        nearest = np.argmin([np.abs(frame.astype(int) - c).mean() for c in clean])
        assert nearest == index


@pytest.mark.parametrize("name, words", [
    ("halfmp4", "cannot open video"), ("codec", "cannot open video"),
    ("noise", "cannot open video"), ("empty", "is empty"), ("zero", "no decodable frames")])
def test_unusable_videos_fail_in_one_line(clips, name, words):
    with pytest.raises(InputError, match=words) as info:
        VideoSource(clips[name])
    assert "\n" not in str(info.value)
    assert name == "empty" or "ffmpeg -i" in str(info.value)  # says how to fix it


def test_missing_file_and_camera(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        VideoSource(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="cannot open camera 97"):
        VideoSource(97)


def test_check_output(tmp_path):
    target = tmp_path / "out.mp4"
    assert check_output(target) == target
    target.write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(target)
    assert check_output(target, force=True) == target
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4")
    with pytest.raises(OutputError, match="does not exist"):
        check_output(target / "inside.mp4")  # the "folder" is a file
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_unwritable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="permission denied"):
        check_output(locked / "out.mp4")


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_writer_round_trip(tmp_path, suffix):
    frames = videos.pan_frames(12)
    path = tmp_path / f"w{suffix}"
    with VideoWriter(path, 12.5, (320, 240)) as writer:
        for frame in frames[:-1]:
            writer.write(frame)
        writer.write(frames[-1][:200, :300])  # a wrong-sized frame is resized, not dropped
    assert writer.frames_written == 12 == videos.count_frames(path)
    with VideoSource(path) as source:
        assert source.fps == pytest.approx(12.5) and source.size == (320, 240)


def test_writer_errors(tmp_path):
    with pytest.raises(OutputError, match=r"\.mp4"):
        VideoWriter(tmp_path / "w.mkv", 10, (32, 32))
    with pytest.raises(OutputError, match="cannot write video"):
        VideoWriter(tmp_path / "missing" / "w.mp4", 10, (32, 32))
    writer = VideoWriter(tmp_path / "w.avi", 10, (32, 32))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        writer.write(np.zeros((32, 32, 3), np.uint8))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writer_shows_the_video_only_once_it_is_finalised(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the user's old video")  # as after check_output(..., force=True)
    writer = VideoWriter(path, 10, (320, 240))
    for frame in videos.pan_frames(5):
        writer.write(frame)
    [temp] = hidden(tmp_path)
    assert temp.endswith(".tmp.mp4") and (tmp_path / temp).stat().st_size > 0
    assert path.read_bytes() == b"the user's old video"  # untouched while writing
    writer.close()
    assert hidden(tmp_path) == [] and videos.count_frames(path) == 5


def test_writer_discard_and_errors_leave_the_old_file(tmp_path):
    path = tmp_path / "out.avi"
    path.write_bytes(b"old")
    writer = VideoWriter(path, 10, (32, 32))
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.discard()
    with pytest.raises(RuntimeError), VideoWriter(path, 10, (32, 32)) as failing:
        failing.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("the analysis failed")
    assert path.read_bytes() == b"old" and hidden(tmp_path) == []


def test_writer_keeps_a_recording_stopped_with_ctrl_c(tmp_path):
    path = tmp_path / "rec.avi"
    with pytest.raises(KeyboardInterrupt), VideoWriter(path, 10, (32, 32)) as writer:
        for _ in range(3):
            writer.write(np.zeros((32, 32, 3), np.uint8))
        raise KeyboardInterrupt
    assert videos.count_frames(path) == 3 and hidden(tmp_path) == []


def _python(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_writer_killed_mid_way_leaves_no_output(tmp_path):
    script = ("import os, signal, numpy as np\n"
              "from emotiscope.videowrite import VideoWriter\n"
              "w = VideoWriter('out.avi', 10, (32, 32))\n"
              "w.write(np.zeros((32, 32, 3), np.uint8))\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = _python(script, tmp_path)
    assert done.returncode == -9, done.stderr
    assert not (tmp_path / "out.avi").exists()  # only the hidden temporary file is left


def test_names_that_are_not_utf8_do_not_crash_opencv(tmp_path):
    # OpenCV segfaults on such names (cvpath.py), so this runs in a child process.
    try:
        os.mkdir(os.path.join(os.fsencode(tmp_path), b"d\xe9j\xe0"))
    except OSError:
        pytest.skip("this file system refuses names that are not valid UTF-8")
    script = ("import os, numpy as np\n"
              "from emotiscope.videoread import VideoSource\nfrom emotiscope.videowrite import VideoWriter\n"
              "for name in (b'caf\\xe9.avi', b'd\\xe9j\\xe0/caf\\xe9.mp4'):\n"
              "    path = os.fsdecode(name)\n"
              "    with VideoWriter(path, 10, (64, 48)) as w:\n"
              "        for k in range(4):\n"
              "            w.write(np.full((48, 64, 3), 60 * k, np.uint8))\n"
              "    with VideoSource(path) as source:\n"
              "        print(len(list(source)), source.describe())\n"
              "print(sorted(os.listdir(b'.')), sorted(os.listdir(b'd\\xe9j\\xe0')))\n")
    done = _python(script, tmp_path)
    assert done.returncode == 0, (done.returncode, done.stderr)
    lines = done.stdout.splitlines()
    assert lines[0] == "4 caf\\xe9.avi" and lines[1] == "4 d\\xe9j\\xe0/caf\\xe9.mp4"
    assert lines[2] == "[b'caf\\xe9.avi', b'd\\xe9j\\xe0'] [b'caf\\xe9.mp4']"  # no links left


def test_latest_frame_reader_skips_to_the_newest(clips):
    with VideoSource(clips["avi"]) as source:
        reader = LatestFrameReader(source, realtime=False)
        # The consumer "works" while the reader reads all 20 frames. (Taking a first frame before
        # this made the test racy: under load the reader could reach the last frame first.)
        reader._thread.join(timeout=10)
        assert reader.ended and not reader.disconnected
        frame, index, _ = reader.latest(timeout=10)
        assert index == 19 and frame.shape == (240, 320, 3)  # the newest: 0-18 were skipped
        assert reader.latest(timeout=1) is None
        reader.close()


def test_latest_frame_reader_gives_each_frame_its_own_time(tmp_path, monkeypatch):
    times = [0, 0.05, 0.1, 0.4, 0.45, 0.5]  # a variable-rate file: index / fps would be wrong
    path = videos.write_timed_video(tmp_path / "vfr.mp4", videos.pan_frames(6), times)
    with VideoSource(path) as source:
        reader = LatestFrameReader(source)
        got = []
        while (item := reader.latest(timeout=10)) is not None:
            got.append(item[1:])
        reader.close()
    assert got and all(stamp == pytest.approx(times[index]) for index, stamp in got)
    monkeypatch.setattr("emotiscope.videoread.is_url", lambda source: True)  # a stream: the clock
    with VideoSource(path) as source:
        reader = LatestFrameReader(source)
        stamps = []
        while (item := reader.latest(timeout=10)) is not None:
            stamps.append(item[2])
        reader.close()
    assert stamps == sorted(stamps) and 0 <= stamps[0] < stamps[-1] < 5


def test_latest_frame_reader_marks_a_stream_that_stops(clips, monkeypatch):
    monkeypatch.setattr("emotiscope.videoread.is_url", lambda source: True)  # pretend it's a stream
    with VideoSource(clips["avi"]) as source:
        reader = LatestFrameReader(source)
        while reader.latest(timeout=10) is not None:
            pass
        reader.close()
    assert reader.ended and reader.disconnected


def test_frames_above_the_pixel_limit_are_refused_before_decoding(clips, monkeypatch):
    def no_decoding(self):
        raise AssertionError("a frame was decoded before the size check")

    monkeypatch.setattr(VideoSource, "_decode", no_decoding)
    with pytest.raises(InputError, match=r"320x240 \(0.1 megapixels\), above the limit") as info:
        VideoSource(clips["mp4"], max_pixels=320 * 240 - 1)
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    with VideoSource(clips["mp4"], max_pixels=320 * 240) as source:
        assert source.size == (320, 240)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and /dev/zero")
def test_fifos_devices_and_folders_are_named_not_missing(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")  # opening it for reading would block: no writer
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    cases = {tmp_path / "pipe.mp4": "named pipe", Path("/dev/zero"): "a device",
             tmp_path: "is a folder", tmp_path / "loop.mp4": "symbolic links"}
    for path, words in cases.items():
        with pytest.raises(InputError, match=words) as info:
            VideoSource(path)
        assert "does not exist" not in str(info.value)


def test_ffmpeg_complaints_about_a_damaged_video_stay_quiet(clips):
    import subprocess
    import sys

    data = bytearray(clips["mp4"].read_bytes())
    data[len(data) // 2:len(data) // 2 + 2000] = bytes(2000)  # damage frames mid-stream
    damaged = clips["mp4"].with_name("damaged.mp4")
    damaged.write_bytes(bytes(data))
    code = ("import sys; from emotiscope.videoread import VideoSource\n"
            f"with VideoSource({str(damaged)!r}) as s: print(sum(1 for _ in s))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"})
    assert run.returncode == 0 and int(run.stdout) > 0
    assert run.stderr == ""  # FFmpeg printed "[mpeg4 @ 0x...] marker does not match f_code"


VFR_TIMES = [0.0, 0.1, 0.5, 0.6, 0.7, 1.3]  # a phone's variable rate: pauses, bursts


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_a_variable_frame_rate_file_is_timed_by_its_timestamps(tmp_path, ext):
    path = videos.write_timed_video(tmp_path / f"vfr.{ext}", videos.pan_frames(6), VFR_TIMES)
    with VideoSource(path) as source:
        timed = [(index, time) for index, time, _ in source.timed()]
    assert [index for index, _ in timed] == list(range(6))
    assert [time for _, time in timed] == pytest.approx(VFR_TIMES, abs=1e-6)


@pytest.mark.parametrize("rate", [15, Fraction(30000, 1001)])
def test_a_constant_frame_rate_file_keeps_index_over_fps(clips, tmp_path, rate):
    # MJPG .avi by OpenCV, and H.264 .mkv whose 1 ms time base rounds 29.97 fps' times
    path = (clips["avi"] if rate == 15 else videos.write_timed_video(
        tmp_path / "cfr.mkv", videos.pan_frames(20), [i / rate for i in range(20)], rate))
    with VideoSource(path) as source:
        times = [time for _, time, _ in source.timed()]
        fps = source.fps
    assert times == [i / fps for i in range(20)]  # exactly, as before timestamps were read


def test_a_timestamp_rounded_by_half_a_millisecond_keeps_index_over_fps(tmp_path):
    # at 23.976 fps frame 12 falls at 500.5 ms, stored as 501 ms in .mkv: exactly half a
    # millisecond off, which floating point made a hair more
    rate = Fraction(24000, 1001)
    path = videos.write_timed_video(tmp_path / "cfr.mkv", videos.pan_frames(1) * 20,
                                    [i / rate for i in range(20)], rate)
    with VideoSource(path) as source:
        times = [time for _, time, _ in source.timed()]
        fps = source.fps
    assert times[12] == 12 / fps and times == [i / fps for i in range(20)]


class ScriptedStamps:
    """A capture that decodes a real file but reports the given POS_MSEC values."""

    def __init__(self, cap, stamps: list[float]) -> None:
        self.cap, self.stamps = cap, iter(stamps)

    def read(self):
        return self.cap.read()

    def get(self, prop):
        return next(self.stamps)

    def release(self):
        self.cap.release()


def test_missing_or_backward_timestamps_fall_back_to_the_frame_rate(clips):
    with VideoSource(clips["avi"]) as source:  # 15 fps; frame 0 read on opening, at 0 ms
        source._cap = ScriptedStamps(source._cap, [100, 100, -5, float("nan"), 600, 0])
        times = [time for _, time, _ in itertools.islice(source.timed(), 7)]
    step = 1 / 15  # frames 2-4 and 6: after 100 ms, after 600 ms at the stated rate
    assert times == pytest.approx([0, 0.1, 0.1 + step, 0.1 + 2 * step, 0.1 + 3 * step, 0.6,
                                   0.6 + step])


def test_a_bogus_timestamp_far_past_the_end_does_not_shift_the_frames_after_it(clips):
    with VideoSource(clips["avi"]) as source:  # 15 fps, under 2 s; frame 0 read at 0 ms
        assert source.frame_count and source.frame_count / source.fps < 2
        source._cap = ScriptedStamps(source._cap, [100, 200, 1e6, 400, 500])  # 1000 s: damage
        times = [time for _, time, _ in itertools.islice(source.timed(), 6)]
    assert times == pytest.approx([0, 0.1, 0.2, 0.2 + 1 / 15, 0.4, 0.5])


def test_the_latest_sane_time_leaves_a_margin_and_is_off_without_a_stated_length():
    from emotiscope.videoread import latest_sane_time

    assert latest_sane_time(60.0) > 60.0 and latest_sane_time(None) == float("inf")
    assert latest_sane_time(0.0) == float("inf") and latest_sane_time(float("nan")) == float("inf")
