from __future__ import annotations

import itertools

import numpy as np
import pytest

from emotiscope.errors import ConfigError
from emotiscope.track import FaceTracker, ema_weight, linear_assignment
from emotiscope.types import Box

LABELS = ("a", "b", "c")
FPS = 30.0


def onehot(i: int, n: int = len(LABELS)) -> np.ndarray:
    p = np.full(n, 0.05)
    p[i] = 1.0 - 0.05 * (n - 1)
    return p


def box_at(cx: float, cy: float, side: int = 40) -> Box:
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side, 0.9)


def brute_force(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, c] for i, c in enumerate(p))
                   for p in itertools.permutations(range(m), n))
    return brute_force(cost.T)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 5), (5, 2), (4, 4), (6, 6)])
def test_linear_assignment_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.integers(0, 20, shape).astype(float)
        pairs = linear_assignment(cost)
        assert len(pairs) == min(shape)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(brute_force(cost))


def test_linear_assignment_beats_greedy():
    # greedy would take the 1 and then be forced into the 100
    cost = np.array([[1.0, 2.0], [2.0, 100.0]])
    assert linear_assignment(cost) == [(0, 1), (1, 0)]
    assert linear_assignment(np.zeros((0, 3))) == []


def test_ema_weight():
    assert ema_weight(0.1, 0.0) == 1.0
    assert ema_weight(0.0, 0.5) == 0.0
    assert ema_weight(0.5, 0.5) == pytest.approx(1 - np.exp(-1))
    assert ema_weight(1 / 30, 0.5) < 0.1


def test_ids_stable_while_moving():
    tracker = FaceTracker(LABELS)
    ids = set()
    for f in range(60):
        faces = tracker.update([box_at(50 + 4 * f, 100)], [onehot(0)], f / FPS)
        ids.add(faces[0].track_id)
    assert ids == {1}


def test_enter_and_leave():
    tracker = FaceTracker(LABELS, keep_for=0.2)
    first = tracker.update([box_at(100, 100)], [onehot(0)], 0.0)
    both = tracker.update([box_at(100, 100), box_at(400, 100)], [onehot(0), onehot(1)], 1 / FPS)
    assert [f.track_id for f in first] == [1]
    assert [f.track_id for f in both] == [1, 2]
    t = 2 / FPS
    for _ in range(10):  # face 1 leaves; after keep_for it is forgotten
        t += 1 / FPS
        faces = tracker.update([box_at(400, 100)], [onehot(1)], t)
    assert [f.track_id for f in faces] == [2]
    assert [tr.track_id for tr in tracker.tracks] == [2]
    back = tracker.update([box_at(100, 100), box_at(400, 100)], [onehot(0), onehot(1)], t + 0.03)
    assert [f.track_id for f in back] == [3, 2]  # a new person, not a resurrected id


def test_brief_occlusion_keeps_identity():
    tracker = FaceTracker(LABELS, keep_for=1.0)
    for f in range(10):
        tracker.update([box_at(100 + 3 * f, 100)], [onehot(0)], f / FPS)
    for f in range(10, 25):  # hidden for half a second
        assert tracker.update([], np.zeros((0, 3)), f / FPS) == []
    faces = tracker.update([box_at(100 + 3 * 25, 100)], [onehot(0)], 25 / FPS)
    assert faces[0].track_id == 1


def test_crossing_faces_keep_ids():
    tracker = FaceTracker(LABELS, max_distance=1.0)
    expected = None
    for f in range(40):  # they pass through each other at frame 20
        left, right = box_at(100 + 8 * f, 200), box_at(424 - 8 * f, 202)
        order = [left, right] if f % 2 else [right, left]  # detector order varies
        faces = tracker.update(order, [onehot(0), onehot(1)], f / FPS)
        ids = {face.box: face.track_id for face in faces}
        expected = expected or (ids[left], ids[right])
        assert (ids[left], ids[right]) == expected, f"ids swapped at frame {f}"
    assert sorted(expected) == [1, 2]


def test_far_jump_starts_new_track():
    tracker = FaceTracker(LABELS)
    tracker.update([box_at(100, 100)], [onehot(0)], 0.0)
    faces = tracker.update([box_at(500, 400)], [onehot(0)], 1 / FPS)
    assert faces[0].track_id == 2


def test_size_change_is_tolerated_but_not_huge_jumps():
    tracker = FaceTracker(LABELS)
    tracker.update([box_at(200, 200, 40)], [onehot(0)], 0.0)
    assert tracker.update([box_at(200, 200, 48)], [onehot(0)], 0.03)[0].track_id == 1
    assert tracker.update([box_at(200, 200, 200)], [onehot(0)], 0.06)[0].track_id == 2


def test_smoothing_removes_single_frame_flip():
    tracker = FaceTracker(LABELS, smooth=0.5)
    labels = []
    for f in range(60):
        p = onehot(2) if f in (20, 35, 36) else onehot(0)
        labels.append(tracker.update([box_at(100, 100)], [p], f / FPS)[0].label)
    assert set(labels) == {"a"}
    raw = FaceTracker(LABELS, smooth=0.0)
    flips = [raw.update([box_at(100, 100)], [onehot(2) if f == 20 else onehot(0)],
                        f / FPS)[0].label for f in range(30)]
    assert flips[20] == "c" and flips[19] == "a"


def test_smoothing_follows_a_lasting_change():
    tracker = FaceTracker(LABELS, smooth=0.5)
    for f in range(30):
        tracker.update([box_at(100, 100)], [onehot(0)], f / FPS)
    labels = [tracker.update([box_at(100, 100)], [onehot(1)], f / FPS)[0].label
              for f in range(30, 90)]
    switch = labels.index("b")
    assert 0 < switch <= 30 and set(labels[switch:]) == {"b"}


def test_scores_are_probabilities():
    tracker = FaceTracker(LABELS)
    rng = np.random.default_rng(0)
    for f in range(20):
        p = rng.dirichlet(np.ones(3))
        face = tracker.update([box_at(100, 100)], [p], f / FPS)[0]
        assert sum(face.scores.values()) == pytest.approx(1.0)
        assert face.label == max(face.scores, key=face.scores.get)
        assert face.score == face.scores[face.label]


def test_reset_and_bad_arguments():
    tracker = FaceTracker(LABELS)
    tracker.update([box_at(100, 100)], [onehot(0)], 0.0)
    tracker.reset()
    assert tracker.tracks == []
    assert tracker.update([box_at(100, 100)], [onehot(0)], 0.1)[0].track_id == 1
    with pytest.raises(ConfigError, match="smooth"):
        FaceTracker(LABELS, smooth=-1)
    with pytest.raises(ValueError):
        tracker.update([box_at(1, 1)], np.zeros((1, 4)), 0.2)


def test_end_all_gives_new_ids_after_a_cut():
    tracker = FaceTracker(LABELS)
    box = Box(100, 100, 50, 50)
    assert tracker.update([box], [onehot(0)], 0.0)[0].track_id == 1
    tracker.end_all()
    assert tracker.update([box], [onehot(1)], 0.04)[0].track_id == 2  # same place, new person
