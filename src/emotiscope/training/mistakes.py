"""Error analysis of an evaluation: a per-face predictions CSV and a grid of the most confident
mistakes per class."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..outputs import atomic_path


def write_predictions(path: Path, details: dict, labels) -> Path:
    """One row per face: file (or "row N", line N of a CSV), true, predicted, confidence (blank: no face)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["file", "true", "predicted", "confidence"])
    for name, t, p, probs in zip(details["names"], details["y_true"], details["y_pred"],
                                 details["probs"], strict=True):
        found = p >= 0
        out.writerow([name, labels[t], labels[p] if found else "(no face)",
                      f"{probs[p]:.4f}" if found else ""])
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)


def confident_mistakes(details: dict, n_classes: int, per_class: int) -> list[list[int]]:
    """For each true class, the indices of its wrong predictions, most confident first."""
    y_true, y_pred, probs = details["y_true"], details["y_pred"], details["probs"]
    out = []
    for k in range(n_classes):
        wrong = np.flatnonzero((y_true == k) & (y_pred >= 0) & (y_pred != y_true))
        conf = probs[wrong, y_pred[wrong]]
        out.append(wrong[np.argsort(-conf, kind="stable")][:per_class].tolist())
    return out


def plot_mistakes(path: Path, details: dict, labels, per_class: int = 8) -> Path:
    """A grid, one row per true class, of its most confident mistakes ("true→pred 0.93")."""
    from .plots import save_grid

    rows = confident_mistakes(details, len(labels), per_class)
    faces, titles = [], []
    size = next((f.shape for f in details["faces"] if f is not None), (48, 48))
    for k, idx in enumerate(rows):
        if not idx:
            continue
        for j in range(per_class):
            if j < len(idx):
                i = idx[j]
                p = details["y_pred"][i]
                faces.append(details["faces"][i])
                titles.append(f"{labels[k]}→{labels[p]} {details['probs'][i, p]:.2f}")
            else:
                faces.append(np.full(size, 255, np.uint8))
                titles.append("")
    if not faces:
        faces, titles = [np.full(size, 255, np.uint8)], ["no mistakes"]
    return save_grid(np.stack(faces), titles, path, cols=per_class if len(faces) > 1 else 1)
