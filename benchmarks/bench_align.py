"""Turning tilted faces upright with the detector's landmarks: does it help the classifier?

Each face of a split is enlarged 3x, set on a canvas of its own replicated edges, and turned by
+-TILT degrees (alternating sign); YuNet then finds it as `predict` would, and the face is
classified single view three ways: cropped as the box lies ("plain"), always turned so the eyes
are level ("always"), and turned only when the eye line is tilted by ALIGN_MIN_ROLL degrees or
more (the default of preprocess.square_crop). Prints one row per tilt; never run as a test.

    python benchmarks/bench_align.py /tmp/fer2013 [--split val] [--n 1200] [--model M.onnx]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from emotiscope import preprocess
from emotiscope.classify import EmotionClassifier
from emotiscope.detect import make_detector


def tilted_canvas(path: Path, tilt: float) -> np.ndarray:
    big = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (144, 144),
                     interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(big, 72, 72, 72, 72, cv2.BORDER_REPLICATE)
    turn = cv2.getRotationMatrix2D((144, 144), tilt, 1.0)
    return cv2.warpAffine(canvas, turn, (288, 288), borderMode=cv2.BORDER_REPLICATE)


def crops(canvas: np.ndarray, box, min_roll: float) -> np.ndarray:
    saved, preprocess.ALIGN_MIN_ROLL = preprocess.ALIGN_MIN_ROLL, min_roll
    try:
        return preprocess.face_crop(canvas, box, 0.0)
    finally:
        preprocess.ALIGN_MIN_ROLL = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a FER-2013 folder with <split>/<class>/*.jpg")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=1200, help="faces, drawn at random (seed 0)")
    ap.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    ap.add_argument("--tilts", default="0,10,20,30", help="tilts in degrees, comma-separated")
    args = ap.parse_args()
    files = sorted((args.data / args.split).glob("*/*.jpg"))
    files = list(np.random.default_rng(0).choice(files, min(args.n, len(files)), replace=False))
    det = make_detector("yunet", min_face=10, threshold=0.5, max_side=0)
    clf = EmotionClassifier(args.model, threads=1)
    default = preprocess.ALIGN_MIN_ROLL
    print(f"{'tilt':>6} {'found':>10} {'|roll| median':>14} {'plain':>8} {'always':>8} "
          f"{f'>= {default:g} deg':>10}")
    for tilt in (float(t) for t in args.tilts.split(",")):
        faces: dict[str, list] = {"plain": [], "always": [], "default": []}
        truth, rolls = [], []
        for i, path in enumerate(files):
            canvas = tilted_canvas(path, tilt if i % 2 else -tilt)
            boxes = det.detect(canvas)
            if not boxes:
                continue
            box = max(boxes, key=lambda b: b.area)
            faces["plain"].append(crops(canvas, replace(box, roll=0.0), default))
            faces["always"].append(crops(canvas, box, 0.0))
            faces["default"].append(crops(canvas, box, default))
            truth.append(clf.labels.index(path.parent.name))
            rolls.append(abs(box.roll))
        acc = {k: float((clf.predict_crops(v).argmax(1) == np.array(truth)).mean())
               for k, v in faces.items()}
        print(f"{tilt:>5g}° {len(truth):>5}/{len(files):<4} {np.median(rolls):>13.1f}° "
              f"{acc['plain']:>8.2%} {acc['always']:>8.2%} {acc['default']:>10.2%}", flush=True)


if __name__ == "__main__":
    main()
