"""Per-frame face rows (CSV or JSON lines), per-person summaries and a timeline plot.

A row is one face in one frame: time (seconds), frame (index from 0), track_id, the box
(x, y, w, h in frame pixels, top-left origin), the smoothed label and its score, then one
probability column per label in the model's order.
"""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from .errors import DependencyError
from .outputs import save_figure
from .types import FaceEmotion

BASE_COLUMNS = ("time", "frame", "track_id", *FaceEmotion.columns(()))


def csv_header(labels: Sequence[str]) -> list[str]:
    return ["time", "frame", "track_id", *FaceEmotion.columns(labels)]


def face_row(time: float, frame: int, face: FaceEmotion, labels: Sequence[str]) -> list:
    """One CSV row; probabilities rounded to 4 decimals, time to milliseconds."""
    return [f"{time:.3f}", frame, face.track_id, *face.as_row(labels)]


def face_record(time: float, frame: int, face: FaceEmotion) -> dict:
    """One JSON-lines record: the CSV row's fields with `box` and `scores` as objects,
    probabilities rounded to 4 decimals as in the CSV and `predict --json`."""
    return {"time": round(time, 3), "frame": frame, **face.as_dict(digits=4)}


class RowWriter:
    """Writes face rows to an open text stream as CSV (header first) or JSON lines.

    Flushes every `flush_every` frames, so a crash or a full disk leaves complete rows.
    """

    def __init__(self, stream: IO[str], labels: Sequence[str], fmt: str = "csv",
                 flush_every: int = 30) -> None:
        if fmt not in ("csv", "json"):
            raise ValueError(f"fmt must be 'csv' or 'json', got {fmt!r}")
        self.stream, self.labels, self.fmt = stream, tuple(labels), fmt
        self.flush_every, self.frames = flush_every, 0
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(csv_header(self.labels))

    def add(self, time: float, frame: int, faces: Sequence[FaceEmotion]) -> None:
        for face in faces:
            if self._csv is not None:
                self._csv.writerow(face_row(time, frame, face, self.labels))
            else:
                self.stream.write(json.dumps(face_record(time, frame, face)) + "\n")
        self.frames += 1
        if self.frames % self.flush_every == 0:
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class PersonSummary:
    """One tracked person: seconds on screen, the emotion shown longest, share of each."""

    track_id: int
    first_seen: float
    last_seen: float
    seconds: float
    dominant: str
    shares: dict[str, float]

    def as_dict(self) -> dict:
        return {"track_id": self.track_id, "first_seen": round(self.first_seen, 3),
                "last_seen": round(self.last_seen, 3), "seconds": round(self.seconds, 3),
                "dominant": self.dominant,
                "shares": {k: round(v, 4) for k, v in self.shares.items()}}


@dataclass
class _Series:
    """One track's frames, packed (8 bytes a time, 4 a probability: about 36 bytes a face-frame
    with 7 labels, so an hour at 30 fps with 5 faces takes some 20 MB)."""

    size: int  # labels: probabilities per frame
    times: array = field(default_factory=lambda: array("d"))
    probs: array = field(default_factory=lambda: array("f"))  # frame after frame, flat
    label_frames: dict[str, int] = field(default_factory=dict)

    def matrix(self) -> np.ndarray:
        """The probabilities, frames x labels (a view, not a copy)."""
        return np.frombuffer(self.probs, np.float32).reshape(-1, self.size)


class Timeline:
    """Collects every tracked face over a video; frames last 1 / fps seconds each (fps: the
    average rate, for variable-rate videos). `frames` counts the frames added, `length` the
    video's frames through the last one added, undecodable frames skipped before it included
    (its index + 1)."""

    def __init__(self, labels: Sequence[str], fps: float) -> None:
        self.labels, self.fps = tuple(labels), float(fps)
        self.series: dict[int, _Series] = {}
        self.frames = self.length = 0
        self.end = 0.0  # the last frame's time + 1 / fps

    @property
    def seconds(self) -> float:
        """The length of the video, in seconds: through its last frame's own time when that
        is later than `length` frames at the average rate (variable frame rates)."""
        return max(self.length / self.fps, self.end)

    def add(self, time: float, faces: Sequence[FaceEmotion], index: int | None = None) -> None:
        """The faces of one frame at `time`; `index`: its place in the video (default: next)."""
        self.frames += 1
        self.length = max(self.length + 1 if index is None else index + 1, self.length)
        self.end = max(self.end, time + 1 / self.fps)
        for face in faces:
            track_id = face.track_id if face.track_id is not None else 0
            if (s := self.series.get(track_id)) is None:
                s = self.series[track_id] = _Series(len(self.labels))
            s.times.append(time)
            s.probs.extend(face.scores[label] for label in self.labels)
            s.label_frames[face.label] = s.label_frames.get(face.label, 0) + 1

    def summary(self, min_seconds: float = 0.0) -> list[PersonSummary]:
        """One entry per track seen for at least `min_seconds`, the longest on screen first."""
        out = []
        for track_id, s in self.series.items():
            seen = len(s.times)
            if seen / self.fps < min_seconds:
                continue
            shares = {label: s.label_frames.get(label, 0) / seen for label in self.labels}
            dominant = max(self.labels, key=lambda label: shares[label])
            out.append(PersonSummary(track_id, s.times[0], s.times[-1], seen / self.fps,
                                     dominant, shares))
        return sorted(out, key=lambda p: (-p.seconds, p.track_id))


def format_summary(people: Sequence[PersonSummary], duration: float, hidden: int = 0,
                   min_seconds: float = 0.0) -> str:
    """A plain-text table: one line per person with the shares above 1 %. `hidden` tracks,
    seen for less than `min_seconds`, are counted but not listed."""
    brief = (f" ({hidden} more seen for under {min_seconds:g} s: in the CSV, or lower "
             "--min-seconds)" if hidden else "")
    if not people:
        return f"no faces found in {duration:.1f} s of video" + (
            f" for {min_seconds:g} s or more{brief}" if hidden else "")
    lines = [f"{len(people)} {'person' if len(people) == 1 else 'people'} "
             f"in {duration:.1f} s of video{brief}:"]
    for p in people:
        mix = ", ".join(f"{label} {share:.0%}" for label, share in
                        sorted(p.shares.items(), key=lambda kv: -kv[1]) if share >= 0.01)
        lines.append(f"  #{p.track_id}: {p.seconds:.1f} s seen ({p.first_seen:.1f}-"
                     f"{p.last_seen:.1f} s), mostly {p.dominant}; {mix}")
    return "\n".join(lines)


PLOT_POINTS = 2000  # steps drawn per person at most: a 1000-pixel-wide plot shows no more


def plot_steps(series: _Series, fps: float, points: int = PLOT_POINTS
               ) -> tuple[np.ndarray, np.ndarray]:
    """A track's times and probabilities (labels x steps) for a step plot: its frames, or for
    longer tracks `points` runs of consecutive frames, each at its first frame's time with the
    mean of its probabilities; the last step ends 1 / fps after the last frame. Where the face
    was not seen for over 1.5 frame times (between runs), a zero step shows the gap."""
    times, probs = np.asarray(series.times), series.matrix()
    starts = (np.linspace(0, len(times), points, endpoint=False).astype(int)
              if len(times) > points else np.arange(len(times)))
    counts = np.diff(np.append(starts, len(times)))
    probs = np.add.reduceat(probs, starts, axis=0) / counts[:, None]
    ends = times[starts + counts - 1] + 1 / fps  # where each step's last frame ends
    gaps = np.flatnonzero(times[starts[1:]] > ends[:-1] + 1.5 / fps)
    step_times = np.insert(times[starts], gaps + 1, ends[gaps])
    step_probs = np.insert(probs, gaps + 1, 0.0, axis=0)
    return np.append(step_times, ends[-1]), np.vstack([step_probs, step_probs[-1:]]).T


def plot_timeline(timeline: Timeline, path, max_people: int = 8,
                  min_seconds: float = 0.0) -> None:
    """Stacked-area plot of each person's smoothed emotion mix over time, saved to `path`;
    people seen for less than `min_seconds` are left out. Long tracks are drawn as
    PLOT_POINTS averaged steps (see plot_steps)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise DependencyError("--plot needs matplotlib, which emotiscope depends on; it is "
                              "missing from this environment: pip install matplotlib") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .draw import label_colour

    people = timeline.summary(min_seconds)[:max_people]
    rows = max(1, len(people))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.2 + 1.6 * rows), sharex=True,
                             squeeze=False)
    colours = [np.array(label_colour(label, timeline.labels)) / 255 for label in timeline.labels]
    for ax, person in zip(axes[:len(people), 0], people, strict=True):
        times, probs = plot_steps(timeline.series[person.track_id], timeline.fps)
        ax.stackplot(times, probs, colors=colours, step="post")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"#{person.track_id}")
        ax.set_title(f"person #{person.track_id}: mostly {person.dominant}", fontsize=9,
                     loc="left")
    if not people:
        axes[0, 0].text(0.5, 0.5, "no faces found", ha="center", va="center")
    axes[-1, 0].set_xlim(0, timeline.seconds or 1.0)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    fig.legend(handles, timeline.labels, loc="upper center", ncol=len(timeline.labels),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    try:
        save_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)
