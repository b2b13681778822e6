from __future__ import annotations

import csv
import io
import json
import sys
import tracemalloc

import numpy as np
import pytest

from emotiscope.errors import DependencyError
from emotiscope.timeline import (
    BASE_COLUMNS,
    RowWriter,
    Timeline,
    format_summary,
    plot_steps,
    plot_timeline,
)
from emotiscope.types import Box, FaceEmotion

LABELS = ("calm", "joy", "rage")  # fixture labels: the real ones come from the model file


def face(label: str, track_id: int, x: int = 10) -> FaceEmotion:
    scores = {name: (0.8 if name == label else 0.1) for name in LABELS}
    return FaceEmotion(Box(x, 20, 30, 40, 0.9), label, scores, track_id)


def test_csv_rows_have_header_and_one_column_per_label():
    out = io.StringIO()
    writer = RowWriter(out, LABELS)
    writer.add(0.0, 0, [face("joy", 1), face("rage", 2, x=100)])
    writer.add(0.04, 1, [face("joy", 1)])
    writer.flush()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == [*BASE_COLUMNS, *LABELS]
    assert len(rows) == 3
    assert rows[1] == {"time": "0.000", "frame": "0", "track_id": "2", "x": "100", "y": "20",
                       "w": "30", "h": "40", "label": "rage", "score": "0.8000",
                       "calm": "0.1000", "joy": "0.1000", "rage": "0.8000"}
    assert rows[2]["time"] == "0.040" and rows[2]["frame"] == "1"


def test_json_lines():
    out = io.StringIO()
    writer = RowWriter(out, LABELS, "json")
    writer.add(1.5, 45, [face("calm", 3)])
    record = json.loads(out.getvalue())
    assert record["time"] == 1.5 and record["frame"] == 45 and record["track_id"] == 3
    assert record["box"] == {"x": 10, "y": 20, "w": 30, "h": 40}
    assert record["scores"]["calm"] == 0.8
    with pytest.raises(ValueError):
        RowWriter(out, LABELS, "xml")


def test_json_probabilities_are_rounded_like_the_csv_and_predict():
    out = io.StringIO()
    scores = {"calm": 0.123456789, "joy": 0.2, "rage": 0.676543211}
    RowWriter(out, LABELS, "json").add(0.0, 0, [FaceEmotion(Box(1, 2, 3, 4), "rage", scores, 1)])
    record = json.loads(out.getvalue())
    assert record["score"] == 0.6765 and record["scores"]["calm"] == 0.1235
    with pytest.raises(ValueError):
        RowWriter(out, LABELS, "xml")


def test_rows_are_flushed_as_they_go(tmp_path):
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as stream:
        writer = RowWriter(stream, LABELS, flush_every=2)
        for i in range(4):
            writer.add(i / 10, i, [face("joy", 1)])
        assert len(path.read_text().splitlines()) == 5  # on disk before closing


def test_summary_counts_seconds_and_shares():
    timeline = Timeline(LABELS, fps=10)
    for i in range(20):
        faces = [face("joy" if i < 15 else "rage", 1)]
        if i >= 10:
            faces.append(face("calm", 2, x=200))
        timeline.add(i / 10, faces)
    first, second = timeline.summary()
    assert (first.track_id, first.seconds, first.dominant) == (1, 2.0, "joy")
    assert first.shares == {"calm": 0.0, "joy": 0.75, "rage": 0.25}
    assert (second.track_id, second.seconds, second.first_seen) == (2, 1.0, 1.0)
    assert second.as_dict()["shares"]["calm"] == 1.0
    text = format_summary(timeline.summary(), 2.0)
    assert "2 people" in text and "#1: 2.0 s seen" in text and "joy 75%" in text
    assert format_summary([], 3.0) == "no faces found in 3.0 s of video"


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    timeline = Timeline(LABELS, fps=10)
    for i in range(10):
        timeline.add(i / 10, [face("joy", 1), face("calm", 2, x=200)])
    plot_timeline(timeline, tmp_path / "t.png")
    plot_timeline(Timeline(LABELS, fps=10), tmp_path / "empty.png")
    for name in ("t.png", "empty.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_keeps_a_few_dozen_bytes_per_face_frame():
    # an hour at 30 fps with 5 faces is 540k face-frames: at the ~160 bytes of a float and a
    # small array each, that was ~90 MB; packed it is ~4 bytes a number
    timeline = Timeline(LABELS, fps=30)
    faces = [face("joy", k, x=50 * k) for k in range(1, 6)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            timeline.add(i / 30, faces)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / (2000 * 5) < 8 + 4 * len(LABELS) + 16
    assert [p.seconds for p in timeline.summary()] == [2000 / 30] * 5


def test_long_tracks_are_plotted_as_averaged_steps():
    timeline = Timeline(LABELS, fps=10)
    for i in range(5000):
        timeline.add(i / 10, [face("joy" if i < 2500 else "rage", 1)])
    times, probs = plot_steps(timeline.series[1], timeline.fps, points=100)
    assert times.shape == (101,) and probs.shape == (len(LABELS), 101)
    assert times[0] == 0 and times[-1] == pytest.approx(500.0)  # the last frame lasts 1 / fps
    assert np.allclose(probs[:, 0], [0.1, 0.8, 0.1]) and np.allclose(probs[:, -1], [0.1, 0.1, 0.8])
    short = Timeline(LABELS, fps=10)
    short.add(0.0, [face("joy", 1)])
    times, probs = plot_steps(short.series[1], short.fps)
    assert list(times) == [0.0, 0.1] and probs.shape == (len(LABELS), 2)


def test_plot_shows_when_a_face_was_not_seen():
    """A face hidden for a while is drawn as a gap (zero step), not as its last emotion."""
    timeline = Timeline(LABELS, fps=10)
    for i in [0, 1, 2, 8, 9]:
        timeline.add(i / 10, [face("joy", 1)])
    times, probs = plot_steps(timeline.series[1], timeline.fps)
    assert np.allclose(times, [0.0, 0.1, 0.2, 0.3, 0.8, 0.9, 1.0])
    assert np.allclose(probs[:, 3], 0) and np.allclose(probs[:, 4], [0.1, 0.8, 0.1])
    assert np.allclose(probs.sum(axis=0)[[0, 1, 2, 4, 5, 6]], 1.0)


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DependencyError, match="pip install matplotlib"):
        plot_timeline(Timeline(LABELS, fps=10), tmp_path / "t.png")


def test_min_seconds_hides_brief_tracks_from_the_summary_only():
    timeline = Timeline(LABELS, fps=10)
    for i in range(20):
        faces = [FaceEmotion(Box(0, 0, 10, 10), "calm", dict.fromkeys(LABELS, 1 / 3), track_id=1)]
        if i < 3:  # a passer-by for 0.3 s
            faces.append(FaceEmotion(Box(50, 0, 10, 10), "joy", dict.fromkeys(LABELS, 1 / 3),
                                     track_id=2))
        timeline.add(i / 10, faces)
    assert [p.track_id for p in timeline.summary()] == [1, 2]
    assert [p.track_id for p in timeline.summary(min_seconds=1.0)] == [1]
    text = format_summary(timeline.summary(1.0), 2.0, hidden=1, min_seconds=1.0)
    assert text.startswith("1 person in 2.0 s of video (1 more seen for under 1 s")
    assert "no faces found in 2.0 s of video for 5 s or more" in format_summary(
        timeline.summary(5.0), 2.0, hidden=2, min_seconds=5.0)
