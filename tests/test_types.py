from __future__ import annotations

import dataclasses

import pytest

from emotiscope.types import Box, FaceEmotion


def test_faces_are_frozen_and_hashable_by_value():
    face = FaceEmotion(Box(1, 2, 30, 40, 0.9), "happy", {"happy": 0.7, "sad": 0.3})
    same = FaceEmotion(Box(1, 2, 30, 40, 0.9), "happy", {"sad": 0.3, "happy": 0.7})
    other = dataclasses.replace(face, track_id=3)
    assert face == same and hash(face) == hash(same)  # the order of the scores does not count
    assert {face, same, other} == {face, other} and {face: 1}[same] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.label = "sad"  # type: ignore[misc]
