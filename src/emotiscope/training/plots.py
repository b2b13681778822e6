"""Pictures: training curves, confusion matrix, class-count bars, sample grids (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DependencyError
from ..outputs import save_figure


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise DependencyError("plots need matplotlib: pip install matplotlib, or pip install '.[train]' in "
                              "the emotiscope clone") from exc
    return plt


def _save(plt, fig, path: Path) -> Path:
    """Write the figure atomically (format from the suffix) and free it, even on failure."""
    try:
        return save_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> Path:
    """Loss and accuracy per epoch, train vs validation. The train loss drawn solid is the plain
    cross-entropy (`train_ce`: no label smoothing, class weights or distillation), comparable with
    the validation loss; the objective actually minimised is drawn dashed."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if all("train_ce" in h for h in history):
        ax1.plot(epochs, [h["train_ce"] for h in history], label="train (cross-entropy)")
        ax1.plot(epochs, [h["train_loss"] for h in history], "--", color="grey", alpha=0.7,
                 label="train objective")
    else:
        ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax2.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax2.plot(epochs, [h["val_acc"] for h in history], label="validation")
    ax2.set(xlabel="epoch", ylabel="top-1 accuracy", title="Accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_confusion(cm, labels, path: Path, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix with counts; rows true, columns predicted. `labels` name
    the columns; rows use the first len(cm) of them (an extra "(no face)" column is allowed)."""
    plt = _plt()
    cm = np.asarray(cm)
    rows, cols = list(labels)[:cm.shape[0]], list(labels)[:cm.shape[1]]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2, 1.1 * len(rows) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{norm[i, j]:.0%}\n{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_reliability(calibration: dict, path: Path, title: str = "Reliability") -> Path:
    """Accuracy against mean confidence per confidence bin (bars), the diagonal = perfect."""
    plt = _plt()
    bins = calibration["bins"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    ax.bar(centers, [b["accuracy"] for b in bins], width=widths, edgecolor="black", alpha=0.7,
           label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["confidence"] for b in bins], "r.", label="mean confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence of the top label", ylabel="accuracy",
           title=f"{title}\nECE {calibration['ece']:.3f}, temperature {calibration['temperature']:g}")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_counts(counts: dict[str, dict[str, int]], path: Path) -> Path:
    """Grouped bars: images per class for each split."""
    plt = _plt()
    classes = list(next(iter(counts.values())))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(counts)
    for i, (split, c) in enumerate(counts.items()):
        ax.bar(np.arange(len(classes)) + i * width, [c[k] for k in classes], width, label=split)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes)
    ax.set(ylabel="images", title="Images per class")
    ax.legend()
    fig.tight_layout()
    return _save(plt, fig, path)


def save_grid(faces: np.ndarray, titles: list[str], path: Path, cols: int = 8) -> Path:
    """A grid of grey faces with a title over each."""
    plt = _plt()
    rows = max(1, -(-len(faces) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, face, title in zip(axes.flat, faces, titles, strict=False):
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)
