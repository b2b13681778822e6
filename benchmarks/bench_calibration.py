"""Where to fit the calibration temperature: the whole held-out slice, or its duplicate-free part?

For a checkpoint of a run that held out a --val-fraction slice of its training data, prints the
slice's accuracy on all its faces, on those without a near-duplicate among the training faces and
on the twins, the accuracy on the data's `val` split, and the expected calibration error on `val`
with temperature 1, fitted on the whole slice, fitted on its duplicate-free part (what training
does), and fitted on `val` itself (the oracle). Never run as a test.

    python benchmarks/bench_calibration.py runs/<run>/best.pt [runs/<other>/best.pt ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from emotiscope.classify import softmax
from emotiscope.preprocess import InputSpec
from emotiscope.training import calibrate
from emotiscope.training.checkpoint import load_checkpoint, model_from_checkpoint
from emotiscope.training.config import TrainConfig
from emotiscope.training.data import load_any
from emotiscope.training.duplicates import near_duplicates
from emotiscope.training.ensemble import ensemble_logits  # any of our networks, batched
from emotiscope.training.prepare import prepare_data


def ece(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    return calibrate.reliability(softmax(logits, t), y)["ece"]


def measure(path: Path) -> None:
    ckpt = load_checkpoint(path)
    model, spec = model_from_checkpoint(ckpt, path).eval(), InputSpec.from_dict(ckpt["spec"])
    labels = list(ckpt["labels"])
    cfg = TrainConfig.from_dict(ckpt["config"])
    train, held, _ = prepare_data(cfg)
    val = load_any(Path(cfg.data))["val"]
    lh, lv = ensemble_logits(model, spec, held.images), ensemble_logits(model, spec, val.images)
    yh = np.array([labels.index(held.classes[i]) for i in held.labels])
    yv = np.array([labels.index(val.classes[i]) for i in val.labels])
    twin = near_duplicates(held.images, train.images)
    right = lh.argmax(1) == yh
    print(f"{path}: slice {len(yh)} faces, {int(twin.sum())} with a twin in training; accuracy all "
          f"{right.mean():.2%}, duplicate-free {right[~twin].mean():.2%}, twins {right[twin].mean():.2%}; "
          f"val {(lv.argmax(1) == yv).mean():.2%}")
    fits = {"1": 1.0, "whole slice": calibrate.fit_temperature(lh, yh),
            "duplicate-free slice": calibrate.fit_temperature(lh[~twin], yh[~twin]),
            "val (oracle)": calibrate.fit_temperature(lv, yv)}
    print("  val ECE with T = " + "; ".join(f"{k} ({t:.3f}): {ece(lv, yv, t):.4f}" for k, t in fits.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.checkpoints:
        measure(path)


if __name__ == "__main__":
    main()
