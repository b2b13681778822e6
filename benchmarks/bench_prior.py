"""Is the surplus of "neutral" a class-prior effect? Post-hoc logit adjustment, measured.

A model trained on FER-2013 learns its class frequencies (happy 25 %, disgust 1.5 %). On data
whose classes are balanced, such as posed-expression photo sets, the Bayes-optimal correction
subtracts tau x log(training prior) from the logits (tau = 1; Menon et al. 2021, "Long-tail
learning via logit adjustment"). For each tau this prints accuracy, balanced accuracy (the mean
recall: the accuracy on a class-balanced version of the data) and how many faces each class is
given, on the held-out 5 % slice of train/ (`--val-fraction 0.05`, which the bundled model never
trained on) and on val/. Then it fits one bias per class on the slice by log-likelihood, as
temperature scaling fits T, and prints the same. Never run as a test.

    python benchmarks/bench_prior.py /tmp/fer2013 [--model M]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from emotiscope.classify import EmotionClassifier
from emotiscope.preprocess import prepare_crops
from emotiscope.training.data import load_any
from emotiscope.training.faceset import FaceSet, split_fraction
from emotiscope.training.prepare import SPLIT_SEED

TAUS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def log_probs(clf: EmotionClassifier, faces: FaceSet) -> np.ndarray:
    """Log-probabilities at the model's temperature, one view (the default)."""
    out = [clf.predict_batch(prepare_crops(list(faces.images[i:i + 512]), clf.info.spec))
           for i in range(0, len(faces), 512)]
    return np.log(np.maximum(np.concatenate(out), 1e-12))


def fit_bias(z: np.ndarray, y: np.ndarray, steps: int = 3000, lr: float = 0.5) -> np.ndarray:
    """One additive bias per class minimising the mean negative log-likelihood (convex)."""
    b = np.zeros(z.shape[1])
    onehot = np.eye(z.shape[1])[y]
    for _ in range(steps):
        s = z + b
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        b -= lr * (p - onehot).mean(0)
    return b - b.mean()


def row(name: str, z: np.ndarray, y: np.ndarray) -> str:
    pred = z.argmax(1)
    recall = [float((pred[y == k] == k).mean()) for k in range(z.shape[1])]
    counts = " ".join(f"{c:4d}" for c in np.bincount(pred, minlength=z.shape[1]))
    return f"{name:>14} {np.mean(pred == y):8.2%} {np.mean(recall):9.2%}   {counts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="FER-2013 folder with train/ and val/")
    parser.add_argument("--model", help="an .onnx model (default: the bundled one)")
    args = parser.parse_args()
    clf = EmotionClassifier(args.model, threads=2)
    splits = load_any(args.data)
    rest, held = split_fraction(splits["train"], 0.05, SPLIT_SEED)
    if tuple(rest.classes) != tuple(clf.labels):
        raise SystemExit(f"the data's classes {rest.classes} differ from the model's {clf.labels}")
    prior = np.bincount(rest.labels, minlength=len(clf.labels)) / len(rest)
    parts = {"slice": held, "val": splits["val"]}
    z = {k: log_probs(clf, v) for k, v in parts.items()}
    bias = fit_bias(z["slice"], held.labels)
    head = " ".join(f"{c[:4]:>4}" for c in clf.labels)
    for k, faces in parts.items():
        print(f"\n{k} ({len(faces)} faces; true counts "
              f"{' '.join(str(c) for c in np.bincount(faces.labels, minlength=len(prior)))})")
        print(f"{'':>14} {'accuracy':>8} {'balanced':>9}   {head}  (faces given each class)")
        for tau in TAUS:
            print(row(f"tau {tau:.2f}", z[k] - tau * np.log(prior), faces.labels))
        print(row("fitted bias", z[k] + bias, faces.labels))
    fitted = " ".join(f"{c} {b:+.2f}" for c, b in zip(clf.labels, bias, strict=True))
    print(f"\nbias fitted on the slice: {fitted}")


if __name__ == "__main__":
    main()
