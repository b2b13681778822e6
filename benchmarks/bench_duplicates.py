"""Near-duplicates between an evaluation split and the training split: counts per similarity band
and a picture of sampled pairs per band, to choose and check the threshold `evaluate` uses.

Each band's row of the picture is 8 pairs: the evaluation face above its most similar training
face (or that face's mirror image). Prints numbers; never run as a test.

    python benchmarks/bench_duplicates.py /tmp/fer2013 [--split val] [--out duplicates.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from emotiscope.training.data import load_any
from emotiscope.training.duplicates import THRESHOLD, best_match

BANDS = ((0.99, 1.01), (0.98, 0.99), (0.97, 0.98), (0.96, 0.97), (0.95, 0.96), (0.93, 0.95), (0.90, 0.93))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a FER-2013 layout with a train split (folder or CSV)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", default="duplicates.png", help="picture of sampled pairs per band")
    args = parser.parse_args()
    splits = load_any(Path(args.data), 48)
    train, query = splits["train"], splits[args.split]
    sim, index = best_match(query.images, train.images)
    print(f"{args.split}: {len(query)} faces against {len(train)} training faces (and their mirrors)")
    print(f"{'similarity':>12} {'faces':>6} {'share':>7}")
    rng = np.random.default_rng(0)
    rows = []
    for lo, hi in BANDS:
        inside = np.flatnonzero((sim >= lo) & (sim < hi))
        print(f"{lo:.2f}-{min(hi, 1):.2f} {len(inside):>6} {len(inside) / len(query):>7.1%}")
        pick = rng.choice(inside, min(8, len(inside)), replace=False) if len(inside) else []
        pairs = [np.concatenate([query.images[i], train.images[index[i]]], 0) for i in pick]
        pairs += [np.zeros((96, 48), np.uint8)] * (8 - len(pairs))
        rows.append(np.concatenate(pairs, 1))
    print(f"at the threshold {THRESHOLD}: {(sim >= THRESHOLD).sum()} faces "
          f"({(sim >= THRESHOLD).mean():.1%}) are left out of the duplicate-free accuracy")
    cv2.imwrite(args.out, cv2.resize(np.concatenate(rows, 0), None, fx=2, fy=2))
    print(f"pairs per band (top row of each pair: {args.split}; bottom: train): {args.out}")


if __name__ == "__main__":
    main()
