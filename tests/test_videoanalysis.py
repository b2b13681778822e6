from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures import videos

from emotiscope.errors import ConfigError, InputError
from emotiscope.types import Box, FaceEmotion
from emotiscope.videoanalysis import (
    BackgroundWriter,
    FrameResult,
    VideoAnalyzer,
    clip_box,
    shift_box,
    threaded,
)
from emotiscope.videowrite import VideoWriter


@pytest.fixture(scope="module")
def recognizer(tiny_model_path):
    from emotiscope.pipeline import EmotionRecognizer

    return EmotionRecognizer(model=tiny_model_path)


class FakeRecognizer:
    """Fixed boxes; probabilities scripted per call, to test the analyzer's bookkeeping."""

    labels = ("calm", "joy")

    def __init__(self, boxes, script):
        self.boxes, self.script, self.calls, self.detections = boxes, list(script), 0, 0

    def detect(self, image):
        self.detections += 1
        return list(self.boxes)

    def classify(self, image, boxes):
        joy = self.script[self.calls % len(self.script)]
        self.calls += 1
        return [FaceEmotion(b, "joy" if joy > 0.5 else "calm", {"calm": 1 - joy, "joy": joy})
                for b in boxes]


def texture(seed=0, size=(240, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[0] // 8, size[1] // 8), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, size[::-1], interpolation=cv2.INTER_NEAREST),
                            (5, 5), 0)


def test_clip_box():
    assert clip_box(Box(-10, -10, 50, 50), 100, 100) == Box(0, 0, 40, 40)
    assert clip_box(Box(90, 90, 50, 50), 100, 100) is None  # mostly outside
    assert clip_box(Box(10, 10, 20, 20, 0.7), 100, 100) == Box(10, 10, 20, 20, 0.7)


def test_shift_box_follows_motion():
    grey = texture()
    moved = np.roll(grey, (3, 6), axis=(0, 1))  # 6 px right, 3 px down
    box = Box(100, 80, 60, 60, 0.9)
    shifted = shift_box(grey, moved, box)
    assert abs(shifted.x - 106) <= 1 and abs(shifted.y - 83) <= 1
    assert abs(shifted.w - 60) <= 2 and shifted.score == 0.9
    flat = np.full_like(grey, 128)  # nothing to follow: the box is lost, not carried
    assert shift_box(flat, flat, box) is None
    assert shift_box(grey, texture(seed=1), box) is None  # other content: the flow fails


def test_threaded_keeps_order_and_raises():
    assert list(threaded(iter(range(50)), maxsize=2)) == list(range(50))

    def broken():
        yield 1
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        list(threaded(broken()))
    taken = []
    for item in threaded(iter(range(1000)), maxsize=2):  # leaving early stops the producer
        taken.append(item)
        if item == 3:
            break
    assert taken == [0, 1, 2, 3]


def test_background_writer(tmp_path):
    frames = videos.pan_frames(8)
    path = tmp_path / "bg.avi"
    bg = BackgroundWriter(VideoWriter(path, 10, (320, 240)), lambda r: r.image)
    for i, frame in enumerate(frames):
        bg.submit(FrameResult(i, i / 10, frame, []))
    bg.close()
    assert videos.count_frames(path) == 8

    def explode(result):
        raise ValueError("render failed")

    bg = BackgroundWriter(VideoWriter(tmp_path / "x.avi", 10, (320, 240)), explode)
    bg.submit(FrameResult(0, 0.0, frames[0], []))
    with pytest.raises(ValueError, match="render failed"):
        bg.close()


def test_detects_every_n_frames_and_tracks_between():
    fake = FakeRecognizer([Box(100, 80, 60, 60, 0.9)], [0.9])
    analyzer = VideoAnalyzer(fake, detect_every=4)
    frames = [np.dstack([texture()] * 3)] * 10
    results = list(analyzer.run(frames, fps=10))
    assert [r.detected for r in results] == [i % 4 == 0 for i in range(10)]
    assert fake.detections == 3 and fake.calls == 10  # classified every frame
    assert [r.index for r in results] == list(range(10))
    assert [r.time for r in results] == pytest.approx([i / 10 for i in range(10)])
    assert all(len(r.faces) == 1 and r.faces[0].track_id == 1 for r in results)


def test_smoothing_in_the_analyzer_removes_a_one_frame_flip():
    script = [0.1] * 10 + [0.95] + [0.1] * 9  # "joy" for one frame only
    frames = [np.dstack([texture()] * 3)] * 20
    smooth = VideoAnalyzer(FakeRecognizer([Box(100, 80, 60, 60)], script), smooth=0.5)
    raw = VideoAnalyzer(FakeRecognizer([Box(100, 80, 60, 60)], script), smooth=0.0)
    assert {r.faces[0].label for r in smooth.run(frames, fps=30)} == {"calm"}
    assert [r.faces[0].label for r in raw.run(frames, fps=30)][10] == "joy"


def test_video_never_assumes_a_face_crop():
    """The assume-crop policy is for photos: a video frame without a detected face has none."""
    fake = FakeRecognizer([], [0.5])
    fake.assumed_box = lambda image: Box(0, 0, 320, 240, 0.0)
    results = list(VideoAnalyzer(fake).run([np.dstack([texture()] * 3)] * 3, fps=10))
    assert all(r.faces == [] for r in results)


@pytest.mark.parametrize("bad, words", [
    ({"detect_every": 0}, "detect_every must be 1 or more"),
    ({"detect_every": "5"}, "detect_every must be a whole number, got '5'"),
    ({"smooth": None}, "smooth must be a number"), ({"keep_for": -1}, "keep_for"),
])
def test_bad_tracking_settings_are_a_config_error(bad, words):
    """ConfigError, one line (was a bare ValueError, or a TypeError from the comparison)."""
    with pytest.raises(ConfigError, match=words):
        VideoAnalyzer(FakeRecognizer([], [0.5]), **bad)


@pytest.mark.parametrize("frame", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 4), np.uint8),
                                   np.zeros((48, 64, 3), np.float32), None])
def test_process_takes_frames_as_load_image_does(frame):
    """Grey, RGBA and float frames are converted; None is an InputError (all were cv2.error)."""
    analyzer = VideoAnalyzer(FakeRecognizer([], [0.5]))
    if frame is None:
        with pytest.raises(InputError, match="NoneType"):
            analyzer.process(frame, 0.0)
    else:
        assert analyzer.process(frame, 0.0) == ([], True)


def test_one_face_panning_keeps_one_id(recognizer):
    analyzer = VideoAnalyzer(recognizer, detect_every=5)
    results = list(analyzer.run(videos.pan_frames(30), fps=15))
    assert all(len(r.faces) == 1 for r in results)
    assert {r.faces[0].track_id for r in results} == {1}
    xs = [r.faces[0].box.x for r in results]
    assert xs[-1] - xs[0] > 80  # the box followed the face (4 px per frame)
    for r in results:
        assert set(r.faces[0].scores) == set(recognizer.labels)
        assert sum(r.faces[0].scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_two_faces_keep_their_ids(recognizer):
    analyzer = VideoAnalyzer(recognizer, detect_every=3)
    results = list(analyzer.run(videos.two_face_frames(30), fps=15))
    for r in results:
        by_side = sorted(r.faces, key=lambda f: f.box.x)
        assert [f.track_id for f in by_side] == [1, 2], f"frame {r.index}"


def test_a_cut_gives_a_new_id(recognizer):
    results = list(VideoAnalyzer(recognizer, detect_every=1).run(videos.cut_frames(30), fps=15))
    ids = [[f.track_id for f in r.faces] for r in results]
    assert ids[:15] == [[1]] * 15 and ids[15:] == [[2]] * 15


def test_a_hard_cut_ends_every_track(recognizer):
    frames = videos.cut_frames(32)  # Hopper on the left, then from frame 16 Collins on the right
    results = list(VideoAnalyzer(recognizer, detect_every=5).run(frames, fps=15))
    assert [r.index for r in results if r.cut] == [16]
    first = results[16]  # not a scheduled detection frame (16 % 5 != 0)
    assert first.detected
    assert [f.box.x > 160 for f in first.faces] == [True]  # the new face, no ghost of the old
    before = {f.track_id for r in results[:16] for f in r.faces}
    after = {f.track_id for r in results[16:] for f in r.faces}
    assert before == {1} and after == {2}


def test_a_cut_to_someone_in_the_same_place_gets_a_new_id(recognizer):
    analyzer = VideoAnalyzer(recognizer, detect_every=5)
    ids = [[f.track_id for f in r.faces] for r in analyzer.run(videos.shot_change_frames(32), 15)]
    assert ids[:16] == [[1]] * 16 and ids[16:] == [[2]] * 16
    analyzer.cuts.min_change = float("inf")  # without the cut test the tracker keeps the id
    ids = [[f.track_id for f in r.faces] for r in analyzer.run(videos.shot_change_frames(32), 15)]
    assert ids[16:] == [[1]] * 16


def test_a_followed_box_that_loses_its_face_is_dropped():
    """Between detections a box whose pixels no longer match its face is not carried over
    the background; the detector runs at once instead."""
    face = np.dstack([texture(seed=3)] * 3)
    empty = np.full_like(face, 120)
    fake = FakeRecognizer([Box(100, 80, 60, 60, 0.9)], [0.9])
    analyzer = VideoAnalyzer(fake, detect_every=10)
    analyzer.cuts.min_change = float("inf")  # the box check alone
    fake_boxes = iter([[Box(100, 80, 60, 60, 0.9)], []])
    fake.detect = lambda image: next(fake_boxes)
    results = list(analyzer.run([face, face, empty, empty], fps=10))
    assert [len(r.faces) for r in results] == [1, 1, 0, 0]
    assert [r.detected for r in results] == [True, False, True, False]


def test_run_file(recognizer, tmp_path):
    path = videos.write_video(tmp_path / "pan.avi", videos.pan_frames(12))
    results = list(VideoAnalyzer(recognizer).run_file(path))
    assert len(results) == 12 and results[-1].time == pytest.approx(11 / 15)
    assert results[0].image.shape == (240, 320, 3)


class Recorder:
    """A writer that keeps what it is given."""

    def __init__(self):
        self.frames, self.closed = [], []

    def write(self, frame):
        self.frames.append(frame)

    def close(self, at_source_end=False):
        self.closed.append(at_source_end)


def test_background_writer_holds_a_frame_over_a_gap():
    frames = [np.full((4, 4, 3), k, np.uint8) for k in range(8)]
    recorder = Recorder()
    bg = BackgroundWriter(recorder, lambda r: r.image)
    for k in (1, 2, 5, 6):  # 0 at the start and 3, 4 in the middle were undecodable
        bg.submit(FrameResult(k, k / 10, frames[k], []))
    bg.close()
    assert [int(f[0, 0, 0]) for f in recorder.frames] == [1, 1, 2, 2, 2, 5, 6]


class TimedRecorder(Recorder):
    """A writer that shows each frame at its own time (as H264Writer does)."""

    takes_times = True

    def write(self, frame, time=None):
        self.frames.append((int(frame[0, 0, 0]), time))


def test_background_writer_passes_times_and_repeats_nothing():
    frames = [np.full((4, 4, 3), k, np.uint8) for k in range(8)]
    recorder = TimedRecorder()
    bg = BackgroundWriter(recorder, lambda r: r.image)
    for k, time in ((1, 0.05), (2, 0.1), (5, 0.4), (6, 0.41)):  # 0, 3 and 4 are missing
        bg.submit(FrameResult(k, time, frames[k], []))
    bg.close()
    assert recorder.frames == [(1, 0.05), (2, 0.1), (5, 0.4), (6, 0.41)]  # frame 2 held longer
    assert recorder.closed == [False]  # not told the source ended: the last frame lasts 1/fps


def test_background_writer_tells_the_writer_the_source_ended():
    recorder = TimedRecorder()
    bg = BackgroundWriter(recorder, lambda r: r.image)
    bg.submit(FrameResult(0, 0.0, np.zeros((4, 4, 3), np.uint8), []))
    bg.source_ended()
    bg.close()
    assert recorder.frames == [(0, 0.0)] and recorder.closed == [True]


def test_run_keeps_the_source_numbering_over_a_skipped_frame(tmp_path):
    from test_videoio import damage_frames

    from emotiscope.videoread import VideoSource

    clean = videos.write_video(tmp_path / "pan.avi", videos.pan_frames(12))
    path = damage_frames(clean, tmp_path / "hole.avi", 4)
    analyzer = VideoAnalyzer(FakeRecognizer([], [0.0]))
    with VideoSource(path) as source:
        results = list(analyzer.run(source, source.fps))
    assert [r.index for r in results] == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert results[4].time == pytest.approx(5 / 15)
