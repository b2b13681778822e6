"""Fine-tuning the bundled model on a small "user" data set: old defaults vs the --init-from ones.

Prints the held-out accuracy of the bundled model before fine-tuning and after each recipe.
Never run as a test.

    python benchmarks/bench_finetune.py [--fer /work/data/fer2013/val] [--per-class 40] [--epochs 10]

The split. We have no photos of identified people, so the split is built from FER-2013's
PublicTest faces (/work/data/fer2013/val), which the bundled model never trained on:

- "user data": `--per-class` faces per class, drawn at random (seeded), written as class folders,
  fine-tuned on with the run's own 20 % validation split (as a user with one folder would);
- "held out": every other PublicTest face, minus each one that has a near-twin (cosine similarity
  of 32x32 thumbnails >= 0.95, mirror included; see training/duplicates.py) in the user data.

FER-2013 carries no subject ids, so the split cannot be proved subject-disjoint. The FER faces
were collected by separate image searches, so a person rarely appears twice; the near-duplicate
filter removes the cases where they do with the same picture (crops, re-encodings, mirrors). This
is as close to "other people" as the data allows; the issue's own test (70 photos of 7
performers, tested on 22 others) is the setting this imitates.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from emotiscope.classify import EmotionClassifier
from emotiscope.model_file import bundled_model_path
from emotiscope.training import loop
from emotiscope.training.config import FINETUNE_DEFAULTS, TrainConfig
from emotiscope.training.data import load_folder
from emotiscope.training.duplicates import near_duplicates
from emotiscope.training.evaluate import map_labels, predict_faces


def make_split(fer: Path, per_class: int, seed: int, folder: Path):
    """Write the user data under `folder`; return (held-out faces, their classes, data classes)."""
    fs = load_folder(fer)["all"]
    rng = np.random.default_rng(seed)
    user = np.concatenate([rng.permutation(np.flatnonzero(fs.labels == k))[:per_class]
                           for k in range(len(fs.classes))])
    rest = np.setdiff1d(np.arange(len(fs)), user)
    twins = near_duplicates(fs.images[rest], fs.images[user])
    held = rest[~twins]
    for i in user:
        path = folder / fs.classes[fs.labels[i]] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), fs.images[i])
    print(f"user data: {len(user)} faces ({per_class} per class); held out: {len(held)} faces "
          f"({int(twins.sum())} near-twins of user faces removed)")
    return fs.subset(held), fs.classes


def accuracy(model: Path, held) -> float:
    clf = EmotionClassifier(model, threads=1)
    y = map_labels(held, clf.labels)
    return float((predict_faces(clf, held.images).argmax(1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer", default="/work/data/fer2013/val", help="FER-2013 PublicTest class folders")
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=FINETUNE_DEFAULTS["epochs"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    bundled = bundled_model_path()
    recipes = {
        "old defaults (sgd, lr 0.1, onecycle)": dict(optimizer="sgd", lr=0.1, schedule="onecycle"),
        "new defaults (adamw, lr 1e-4, cosine)": dict(FINETUNE_DEFAULTS),
        "new + --backbone-lr-scale 0.1": dict(FINETUNE_DEFAULTS, backbone_lr_scale=0.1),
        "new + --freeze features, lr 1e-3": dict(FINETUNE_DEFAULTS, freeze="features", lr=1e-3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EMOTISCOPE_CACHE", str(Path(tmp) / "cache"))
        held, _ = make_split(Path(args.fer), args.per_class, args.seed, Path(tmp) / "user")
        print(f"{'recipe':<40} {'epochs':>6} {'held-out acc':>12} {'own val acc':>11} {'seconds':>8}")
        print(f"{'bundled model, not fine-tuned':<40} {'-':>6} {accuracy(bundled, held):>12.4f}")
        for name, recipe in recipes.items():
            cfg = TrainConfig(data=str(Path(tmp) / "user"), init_from=str(bundled), val_fraction=0.2,
                              threads=1, out=str(Path(tmp) / "runs"), seed=args.seed, quiet=True,
                              **{**recipe, "epochs": args.epochs})
            t0 = time.perf_counter()
            run = loop.train(cfg)
            seconds = time.perf_counter() - t0
            own = json.loads((run / "report.json").read_text())["accuracy"]
            print(f"{name:<40} {args.epochs:>6} {accuracy(run / 'model.onnx', held):>12.4f} "
                  f"{own:>11.4f} {seconds:>8.0f}")


if __name__ == "__main__":
    main()
