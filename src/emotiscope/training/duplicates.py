"""Near-duplicate faces between an evaluation split and the training split (numpy + OpenCV only).

FER-2013's splits were cut from one pool of web images, and a tenth of its val and test faces
are the same photo as a training face (re-encoded, re-cropped by a pixel or two, or mirrored).
Accuracy on those faces measures memory, so `evaluate` also reports accuracy without them.

A face is a near-duplicate when its 16x16 thumbnail, standardised (mean 0, norm 1), has a
cosine similarity of at least `THRESHOLD` with a training face's thumbnail or its mirror image.
At 0.95 every sampled pair on FER-2013 val/train is the same photo; below ~0.93 different
photos of similar faces start to appear (benchmarks/bench_duplicates.py draws the pairs).
"""

from __future__ import annotations

import cv2
import numpy as np

THRESHOLD = 0.95
THUMB = 16


def thumbnails(faces: np.ndarray, size: int = THUMB) -> np.ndarray:
    """uint8 N x S x S faces -> float32 N x size*size rows, each mean 0 and norm 1."""
    if not len(faces):
        return np.zeros((0, size * size), np.float32)
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in faces])
    rows = small.reshape(len(faces), -1).astype(np.float32)
    rows -= rows.mean(1, keepdims=True)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True) + 1e-6
    return rows


def best_match(query: np.ndarray, reference: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each query face: (highest similarity to a reference face or its mirror, that face's index).

    Memory stays at chunk x len(reference) floats whatever the sizes."""
    q = thumbnails(query)
    refs = (thumbnails(reference), thumbnails(reference[:, :, ::-1]))
    sim = np.full(len(q), -1.0, np.float32)
    index = np.full(len(q), -1, np.int64)
    if not len(reference):
        return sim, index
    for start in range(0, len(q), chunk):
        block = slice(start, start + chunk)
        for ref in refs:
            scores = q[block] @ ref.T
            top = scores.argmax(1)
            value = scores[np.arange(len(top)), top]
            better = value > sim[block]
            sim[block] = np.where(better, value, sim[block])
            index[block] = np.where(better, top, index[block])
    return sim, index


def near_duplicates(query: np.ndarray, reference: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Boolean mask over `query`: True where the face has a near-twin in `reference`."""
    sim, _ = best_match(query, reference)
    return sim >= threshold
