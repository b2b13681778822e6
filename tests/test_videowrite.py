from __future__ import annotations

import numpy as np
import pytest
from fixtures import videos

from emotiscope.errors import EmotiscopeError
from emotiscope.videowrite import H264Writer, VideoWriter, open_writer

av = pytest.importorskip("av")


def streams(path):
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name,
                 float(s.duration * s.time_base) if s.duration else None, s.frames)
                for s in container.streams]


def test_open_writer_picks_h264_for_mp4_only(tmp_path):
    mp4 = open_writer(tmp_path / "a.mp4", 15, (320, 240))
    avi = open_writer(tmp_path / "a.avi", 15, (320, 240))
    assert isinstance(mp4, H264Writer) and isinstance(avi, VideoWriter)
    mp4.close()
    avi.close()


def test_odd_sizes_lose_a_row_and_a_column(tmp_path):
    path = tmp_path / "odd.mp4"
    with H264Writer(path, 30, (321, 241)) as writer:
        for _ in range(3):
            writer.write(np.full((241, 321, 3), 90, np.uint8))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.frames) == (320, 240, 3)
    with pytest.raises(EmotiscopeError, match="already closed"):
        writer.write(np.zeros((240, 320, 3), np.uint8))


@pytest.mark.parametrize("codec, suffix, copied", [("aac", ".mp4", "aac"), ("mp3", ".mp4", "mp3"),
                                                   ("pcm_s16le", ".mov", "aac")])
def test_sound_is_copied_or_reencoded_for_mp4(tmp_path, codec, suffix, copied):
    frames = videos.pan_frames(15)
    source = videos.write_video_with_sound(tmp_path / f"in{suffix}", frames, audio_codec=codec)
    out = tmp_path / "out.mp4"
    with H264Writer(out, 15, (320, 240), audio_from=source) as writer:
        for frame in frames[:9]:  # a shorter output (e.g. interrupted): the sound stops with it
            writer.write(frame)
    assert writer.has_audio
    (video_type, video_codec, video_s, _), (audio_type, audio_codec, audio_s, _) = streams(out)
    assert (video_type, video_codec, audio_type) == ("video", "h264", "audio")
    assert audio_codec.startswith(copied)  # mp3 decodes as "mp3float"
    assert video_s == pytest.approx(9 / 15) and audio_s == pytest.approx(9 / 15, abs=0.07)


def test_a_source_without_sound_gives_a_silent_video(tmp_path):
    source = videos.write_video(tmp_path / "silent.avi", videos.pan_frames(4))
    with H264Writer(tmp_path / "out.mp4", 15, (320, 240), audio_from=source) as writer:
        writer.write(videos.pan_frames(1)[0])
    assert not writer.has_audio
    assert [s[0] for s in streams(tmp_path / "out.mp4")] == ["video"]


VFR = [0, 1 / 30, 2 / 30, 0.1 + 2 / 30, 0.2 + 2 / 30, 0.2 + 3 / 30, 0.5, 0.6, 0.6 + 1 / 30]


def test_frames_are_shown_at_the_times_given(tmp_path):
    with H264Writer(tmp_path / "vfr.mp4", 15, (64, 48)) as writer:
        for k, time in enumerate(VFR):
            writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
    times, duration = videos.frame_times(tmp_path / "vfr.mp4")
    assert times == pytest.approx(VFR, abs=1 / 90000)
    assert duration == pytest.approx(VFR[-1] + 1 / 15)  # the last frame lasts 1/fps


@pytest.mark.parametrize("times", [[0, *(k / 30 for k in range(3, 20))],
                                   [0, 0.5, *(0.5 + k / 30 for k in range(1, 30)), 2.0, 2.01]])
def test_a_gap_after_the_first_frame_keeps_the_last_frame_its_time(tmp_path, times):
    # frames lost at the start: x264 shifts the dts back by more than the B-frame delay
    with H264Writer(tmp_path / "gap.mp4", 30, (64, 48)) as writer:
        for k, time in enumerate(times):
            writer.write(np.full((48, 64, 3), 37 * k % 255, np.uint8), time=time)
    assert videos.frame_times(tmp_path / "gap.mp4") == (pytest.approx(times, abs=1 / 90000),
                                                        pytest.approx(times[-1] + 1 / 30))


def test_a_constant_rate_keeps_index_over_fps_with_or_without_times(tmp_path):
    for name, times in (("plain", [None] * 7), ("timed", [k / 15 for k in range(7)])):
        with H264Writer(tmp_path / f"{name}.mp4", 15, (64, 48)) as writer:
            for k, time in enumerate(times):
                writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
        expected = [k / 15 for k in range(7)]
        assert videos.frame_times(tmp_path / f"{name}.mp4") == (pytest.approx(expected, abs=1e-9),
                                                                pytest.approx(7 / 15))


def test_unusable_times_follow_the_frame_before_at_the_rate(tmp_path):
    given = [0.3, 0.1, 0.1, float("nan"), None, 0.05, 0.6, 1000.0, 1000.1, 0.9]
    source = videos.write_video(tmp_path / "two_seconds.avi", videos.pan_frames(30))  # 15 fps
    with H264Writer(tmp_path / "out.mp4", 10, (64, 48), audio_from=source) as writer:
        for k, time in enumerate(given):
            writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
    # the first frame starts the video; 1000 s is far past the 2 s source: a bogus stamp
    expected = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert videos.frame_times(tmp_path / "out.mp4") == (pytest.approx(expected), pytest.approx(1.0))


@pytest.mark.parametrize("ended, end", [(True, 0.8), (False, 0.7 + 2 / 15)])
def test_at_the_source_end_the_last_frame_keeps_its_own_length(tmp_path, ended, end):
    times = [0, 0.1, 0.4, 0.5, 0.6, 0.7]  # the source's last frame lasts 1/rate = 0.1 s
    source = videos.write_timed_video(tmp_path / "vfr.mp4", videos.pan_frames(6), times)
    assert videos.frame_times(source)[1] == pytest.approx(0.8)
    with H264Writer(tmp_path / "out.mp4", 7.5, (64, 48), audio_from=source) as writer:
        for k, time in enumerate(times):  # 7.5 fps, its average rate: 1/fps = 0.133 s
            writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
        writer.close(at_source_end=ended)
    # ended: as long as the source; else (stopped early, as far as it knows) 1/fps
    assert videos.frame_times(tmp_path / "out.mp4") == (pytest.approx(times, abs=1e-4),
                                                        pytest.approx(end))


def test_a_source_that_ends_before_its_last_frame_leaves_it_1_over_fps(tmp_path):
    times = [0, 0.1, 0.2, 0.5, 0.6]  # MP4's dts-based end: this source says it lasts 0.5 s
    source = videos.write_timed_video(tmp_path / "vfr.mp4", videos.pan_frames(5), times)
    assert videos.frame_times(source)[1] == pytest.approx(0.5)
    with H264Writer(tmp_path / "out.mp4", 10, (64, 48), audio_from=source) as writer:
        for k, time in enumerate(times):
            writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
        writer.close(at_source_end=True)
    assert videos.frame_times(tmp_path / "out.mp4")[1] == pytest.approx(0.7)


def test_a_long_real_pause_is_kept(tmp_path):
    times = [0, 0.1, 6.1, 6.2]  # a screen recording: nothing changed for 6 s
    source = videos.write_timed_video(tmp_path / "pause.mp4", videos.pan_frames(4), times)
    with H264Writer(tmp_path / "out.mp4", 10, (64, 48), audio_from=source) as writer:
        for k, time in enumerate(times):
            writer.write(np.full((48, 64, 3), 20 * k, np.uint8), time=time)
    assert videos.frame_times(tmp_path / "out.mp4")[0] == pytest.approx(times)
