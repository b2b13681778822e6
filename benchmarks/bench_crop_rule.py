"""Can YuNet's five landmarks frame a face the way FER-2013 did better than its box does?

The classifier learnt FER-2013's own crops; `predict` hands it a square around YuNet's box
(preprocess.square_crop, margin 0). Each FER face is enlarged 3x on a canvas of its replicated
edges (as bench_align.py does), so the crop it was stored as is known: the canvas' centre 144 px.
Crop rules are fitted on training faces (`--fit` of them) and compared on a split, all single
view: the box as `predict` crops it, the box scaled by fixed factors, the box rescaled and
shifted by its median error, and rules from the landmarks (centre on the eye-to-mouth line, side
from the eye distance and the eye-to-mouth distance, least squares), against FER's own crop. Per
rule: the centre's error and the spread of the side (both as shares of the FER side), accuracy,
and the faces it turns right and wrong against the box. Prints numbers; never run as a test.

    python benchmarks/bench_crop_rule.py /tmp/fer2013 [--split val] [--n 0 (all)] [--fit 2500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from emotiscope import preprocess
from emotiscope.classify import EmotionClassifier
from emotiscope.detect import make_detector
from emotiscope.types import Box

sys.path.insert(0, str(Path(__file__).parent))
from bench_align import tilted_canvas  # noqa: E402

CENTRE, SIDE = np.array([144.0, 144.0]), 144.0  # where the stored crop lies on the canvas


def detections(files: list[Path]) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
    """Per found face: box x, y, w, h and the 5 landmarks' x, y (right eye, left eye, nose,
    right and left mouth corner) of the largest face; the files' indices; the canvases."""
    det = make_detector("yunet", min_face=10, threshold=0.5, max_side=0)
    rows, kept, canvases = [], [], []
    for i, path in enumerate(files):
        canvas = cv2.cvtColor(tilted_canvas(path, 0.0), cv2.COLOR_GRAY2RGB)
        found = [f for f in det._call(canvas.shape[1], canvas.shape[0], canvas)
                 if f[4] >= 50 and len(f) >= 15]
        if found:
            best = max(found, key=lambda f: f[2] * f[3])
            rows.append(np.array(best[:4] + tuple(best[5:15]), float))
            kept.append(i)
            canvases.append(canvas[:, :, 0])
    return np.array(rows), kept, canvases


def geometry(rows: np.ndarray) -> dict[str, np.ndarray]:
    x, y, w, h = rows[:, :4].T
    marks = rows[:, 4:14].reshape(-1, 5, 2)
    eyes, mouth = marks[:, :2].mean(1), marks[:, 3:].mean(1)
    return {"box_centre": np.stack([x + w / 2, y + h / 2], 1), "box_side": np.maximum(w, h),
            "eyes": eyes, "mouth": mouth, "eye_dist": np.hypot(*(marks[:, 1] - marks[:, 0]).T),
            "eye_mouth": np.hypot(*(mouth - eyes).T)}


def fit_rules(g: dict[str, np.ndarray]):
    """Rules fitted on training faces: name -> function(geometry) -> (centres, sides)."""
    down = g["mouth"] - g["eyes"]
    along = float(np.median(((CENTRE - g["eyes"]) * down).sum(1) / (down * down).sum(1)))
    lengths = np.stack([g["eye_dist"], g["eye_mouth"]], 1)
    k = np.linalg.lstsq(lengths, np.full(len(lengths), SIDE), rcond=None)[0]
    scale = float(np.median(SIDE / g["box_side"]))
    shift = np.median(CENTRE - g["box_centre"], 0) / np.median(g["box_side"])

    def land_centre(h):
        return h["eyes"] + along * (h["mouth"] - h["eyes"])

    def land_side(h):
        return np.stack([h["eye_dist"], h["eye_mouth"]], 1) @ k

    print(f"fitted: centre = eyes + {along:.3f} x (mouth - eyes); side = {k[0]:.2f} x eye distance "
          f"+ {k[1]:.2f} x eye-to-mouth; box x {scale:.3f}, shifted {shift.round(3)} of its side")
    scaled = {f"box x {z:g}": (lambda h, z=z: (h["box_centre"], z * h["box_side"]))
              for z in (0.91, 0.94, 0.97, 1.03, 1.06)}
    return {
        "box (predict today)": lambda h: (h["box_centre"], h["box_side"]),
        **scaled,
        "box, fitted scale and shift": lambda h: (h["box_centre"] + shift * h["box_side"][:, None],
                                                  scale * h["box_side"]),
        "landmarks": lambda h: (land_centre(h), land_side(h)),
        "box centre, landmark side": lambda h: (h["box_centre"], land_side(h)),
        "landmark centre, box side": lambda h: (land_centre(h), h["box_side"]),
    }


def crop(canvas: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    """The square of `side` around `centre`, as predict crops a box (edges replicated)."""
    side = max(2, int(round(side)))
    x0, y0 = (int(round(c - side / 2)) for c in centre)
    return preprocess.square_crop(canvas, Box(x0, y0, side, side), 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a FER-2013 folder with train/ and <split>/")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=0, help="faces of the split, at random (0: all)")
    ap.add_argument("--fit", type=int, default=2500, help="training faces to fit the rules on")
    ap.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    train = sorted((args.data / "train").glob("*/*.jpg"))
    rules = fit_rules(geometry(detections(list(rng.choice(train, args.fit, replace=False)))[0]))
    files = sorted((args.data / args.split).glob("*/*.jpg"))
    if args.n:
        files = list(rng.choice(files, min(args.n, len(files)), replace=False))
    rows, kept, canvases = detections(files)
    g = geometry(rows)
    clf = EmotionClassifier(args.model, threads=1)
    truth = np.array([clf.labels.index(files[i].parent.name) for i in kept])
    print(f"{len(kept)} of {len(files)} {args.split} faces found")
    print(f"{'rule':<28} {'centre err median/p90':>22} {'side sd':>8} {'accuracy':>9} {'vs box':>9}")
    base = None
    for name, rule in rules.items():
        centres, sides = rule(g)
        faces = [crop(c, m, s) for c, m, s in zip(canvases, centres, sides, strict=True)]
        right = clf.predict_crops(faces).argmax(1) == truth
        base = right if base is None else base
        err = np.hypot(*(centres - CENTRE).T) / SIDE
        print(f"{name:<28} {np.median(err):>12.3f} / {np.percentile(err, 90):.3f} "
              f"{np.log(sides / SIDE).std():>8.3f} {right.mean():>9.2%} "
              f"{f'+{(right & ~base).sum()} -{(base & ~right).sum()}':>9}")
    right = clf.predict_crops([c[72:216, 72:216] for c in canvases]).argmax(1) == truth
    print(f"{'FER-2013 own crop':<28} {'':>22} {'':>8} {right.mean():>9.2%} "
          f"{f'+{(right & ~base).sum()} -{(base & ~right).sum()}':>9}")


if __name__ == "__main__":
    main()
