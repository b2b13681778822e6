"""Face identities across frames, and emotion probabilities smoothed over time.

Pure numpy. Boxes are `types.Box` in frame pixels; times are seconds from the start of the
stream. Each `FaceTracker.update` call takes one frame's boxes with their probabilities (rows
in the model's label order) and returns one `FaceEmotion` per box, with a stable `track_id`
and the smoothed probabilities.

Matching: a track's centre is predicted forward with its velocity, then detections are
assigned to tracks by minimum total cost (Hungarian method), where the cost of a pair is the
distance between centres in units of the track's face size plus the log of their size ratio.
Pairs costing more than `max_distance` never match. A track not seen for more than
`keep_for` seconds is dropped, so brief occlusions keep their identity.

Smoothing: an exponential moving average with time constant `smooth` seconds: after a gap
of dt seconds the new probabilities get weight 1 - exp(-dt / smooth). A one-frame flip at
30 fps with smooth=0.5 s moves the average by 6.4 % of the difference, so labels do not
flicker; a lasting change wins after about `smooth` seconds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .types import Box, FaceEmotion

_FORBIDDEN = 1e9  # finite "never" cost: keeps the Hungarian arithmetic exact
_MAX_PREDICT_S = 0.5  # do not extrapolate motion further than this into a gap


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-total-cost matching of rows to columns (Hungarian method, O(n^2 m)).

    Returns (row, column) pairs; every row is matched when rows <= columns and vice versa.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return []
    if cost.shape[0] > cost.shape[1]:
        return sorted((r, c) for c, r in linear_assignment(cost.T))
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=int)  # owner[j]: 1-based row holding column j, 0 = free
    way = np.zeros(m + 1, dtype=int)
    for row in range(1, n + 1):
        owner[0], col = row, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while owner[col] != 0:
            used[col] = True
            r = owner[col]
            free = np.flatnonzero(~used)
            reduced = cost[r - 1, free - 1] - u[r] - v[free]
            better = reduced < minv[free]
            minv[free[better]] = reduced[better]
            way[free[better]] = col
            nxt = free[np.argmin(minv[free])]
            delta = minv[nxt]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            col = nxt
        while col:  # augment along the alternating path
            prev = way[col]
            owner[col] = owner[prev]
            col = prev
    return sorted((owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j])


def centres_and_sizes(boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray]:
    """Box centres (N x 2, pixels) and sizes sqrt(w * h) (N, pixels)."""
    arr = np.array([[b.x, b.y, b.w, b.h] for b in boxes], dtype=np.float64).reshape(-1, 4)
    centres = arr[:, :2] + arr[:, 2:] / 2.0
    sizes = np.sqrt(np.maximum(arr[:, 2] * arr[:, 3], 1.0))
    return centres, sizes


def ema_weight(dt: float, smooth: float) -> float:
    """Weight of a new observation after dt seconds, for time constant `smooth` seconds."""
    if smooth <= 0 or dt <= 0:
        return 1.0 if smooth <= 0 else 0.0
    return 1.0 - math.exp(-dt / smooth)


@dataclass
class Track:
    """One face identity. `probs` are the smoothed probabilities; velocity is in pixels/s."""

    track_id: int
    box: Box
    probs: np.ndarray
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def predicted_centre(self, time: float) -> np.ndarray:
        centre, _ = centres_and_sizes([self.box])
        ahead = min(max(time - self.last_seen, 0.0), _MAX_PREDICT_S)
        return centre[0] + self.velocity * ahead


def check_tracking(smooth: float, keep_for: float, max_distance: float = 1.0,
                   detect_every: int = 1) -> None:
    """ConfigError unless smooth and keep_for are finite seconds >= 0, max_distance finite and
    above 0 and detect_every a whole number, 1 or more (the command line's parsers refuse the
    same with the flag's name)."""
    for name, value in (("smooth", smooth), ("keep_for", keep_for),
                        ("max_distance", max_distance), ("detect_every", detect_every)):
        kind = numbers.Integral if name == "detect_every" else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"{name} must be a {'whole ' if name == 'detect_every' else ''}"
                              f"number, got {value!r} ({type(value).__name__}); pass e.g. "
                              f"smooth=0.5, keep_for=1.0, detect_every=5")
    if not (0 <= smooth < math.inf and 0 <= keep_for < math.inf and 0 < max_distance < math.inf):
        raise ConfigError("smooth and keep_for must be finite seconds >= 0, and max_distance "
                          f"finite and > 0; got {smooth}, {keep_for}, {max_distance}")
    if detect_every < 1:
        raise ConfigError(f"detect_every must be 1 or more (1: detect on every frame), "
                          f"got {detect_every}")


class FaceTracker:
    """Assigns stable ids to face boxes over time and smooths their probabilities.

    labels: the model's labels (order of the probability columns); smooth: EMA time
    constant in seconds (0 = no smoothing); keep_for: seconds a track survives unseen;
    max_distance: largest matching cost (centre distance in face sizes + |log size ratio|).
    """

    def __init__(self, labels: Sequence[str], *, smooth: float = 0.5, keep_for: float = 1.0,
                 max_distance: float = 1.0) -> None:
        check_tracking(smooth, keep_for, max_distance)
        self.labels = tuple(labels)
        self.smooth, self.keep_for, self.max_distance = smooth, keep_for, max_distance
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self.tracks, self._next_id = [], 1

    def end_all(self) -> None:
        """End every track (a scene cut): faces after it get new ids; ids are never reused."""
        self.tracks = []

    def match_cost(self, boxes: Sequence[Box], time: float) -> np.ndarray:
        """Tracks x boxes matching cost; pairs above `max_distance` are forbidden."""
        if not self.tracks or not boxes:
            return np.zeros((len(self.tracks), len(boxes)))
        centres, sizes = centres_and_sizes(boxes)
        predicted = np.array([t.predicted_centre(time) for t in self.tracks])
        _, track_sizes = centres_and_sizes([t.box for t in self.tracks])
        dist = np.linalg.norm(predicted[:, None, :] - centres[None, :, :], axis=2)
        cost = dist / track_sizes[:, None] + np.abs(np.log(sizes[None, :] / track_sizes[:, None]))
        cost[cost > self.max_distance] = _FORBIDDEN
        return cost

    def update(self, boxes: Sequence[Box], probs: np.ndarray, time: float) -> list[FaceEmotion]:
        """One frame: boxes with their probabilities (N x labels) at `time` seconds.

        Returns one FaceEmotion per box, in the order given, with track ids and the smoothed
        probabilities. Tracks unseen for more than `keep_for` seconds are dropped.
        """
        probs = np.asarray(probs, dtype=np.float64).reshape(len(boxes), len(self.labels))
        cost = self.match_cost(boxes, time)
        owner = {b: self.tracks[t] for t, b in linear_assignment(cost) if cost[t, b] < _FORBIDDEN}
        faces = []
        for i, box in enumerate(boxes):
            track = owner.get(i)
            if track is None:
                track = self._start(box, probs[i], time)
            else:
                self._advance(track, box, probs[i], time)
            faces.append(self._face(track))
        self.tracks = [t for t in self.tracks if time - t.last_seen <= self.keep_for]
        return faces

    def _start(self, box: Box, probs: np.ndarray, time: float) -> Track:
        track = Track(self._next_id, box, probs.copy(), first_seen=time, last_seen=time)
        self._next_id += 1
        self.tracks.append(track)
        return track

    def _advance(self, track: Track, box: Box, probs: np.ndarray, time: float) -> None:
        dt = time - track.last_seen
        if dt > 0:
            centres, _ = centres_and_sizes([track.box, box])
            seen = (centres[1] - centres[0]) / dt
            track.velocity = seen if track.hits == 1 else 0.5 * track.velocity + 0.5 * seen
        track.probs += ema_weight(dt, self.smooth) * (probs - track.probs)
        track.box, track.last_seen, track.hits = box, time, track.hits + 1

    def _face(self, track: Track) -> FaceEmotion:
        scores = {label: float(p) for label, p in zip(self.labels, track.probs, strict=True)}
        label = self.labels[int(np.argmax(track.probs))]
        return FaceEmotion(box=track.box, label=label, scores=scores, track_id=track.track_id)
