from __future__ import annotations

import cv2
import numpy as np
from fixtures import videos

from emotiscope.shots import CutDetector, FaceTemplate
from emotiscope.types import Box


def grey(frames):
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


def cuts(frames) -> list[int]:
    detector = CutDetector()
    return [i for i, g in enumerate(grey(frames)) if detector.is_cut(g)]


def test_cuts_are_found_and_motion_is_not_a_cut():
    assert cuts(videos.cut_frames(30)) == [15]
    assert cuts(videos.shot_change_frames(30)) == [15]
    assert cuts(videos.pan_frames(30)) == []
    assert cuts(videos.two_face_frames(30)) == []


def test_a_fast_pan_is_not_a_cut_but_a_cut_within_it_is():
    rng = np.random.default_rng(0)
    wide = cv2.GaussianBlur(rng.integers(0, 255, (240, 2000), dtype=np.uint8), (9, 9), 0)
    pan = [np.dstack([wide[:, 40 * i:40 * i + 320]] * 3) for i in range(20)]
    other = np.dstack([np.full((240, 320), 230, np.uint8)] * 3)
    assert cuts(pan[:10]) == []  # large differences on every frame, none stands out
    assert cuts(pan[:10] + [other] * 5) == [10]


def test_face_template():
    hopper, collins = videos.faces()
    frame = videos.canvas()
    videos.paste(frame, hopper, 20, 60)
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    box = Box(30, 70, 100, 100)
    template = FaceTemplate(g, box)
    assert template.correlation(g, box) > 0.99
    assert template.matches(g, Box(32, 71, 100, 100))  # a box that drifted a little
    empty = cv2.cvtColor(videos.canvas(), cv2.COLOR_RGB2GRAY)
    assert not template.matches(empty, box)  # the face has gone: a flat background
    other = videos.canvas()
    videos.paste(other, collins, 20, 50)
    assert not template.matches(cv2.cvtColor(other, cv2.COLOR_RGB2GRAY), box)
