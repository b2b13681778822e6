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
