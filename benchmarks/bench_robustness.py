"""Accuracy under what real photos do to a face, for one or more models side by side.

Each condition degrades every face of a split the same seeded way, then classifies it as
`evaluate` does (the model's temperature; the views it asks for by default, as every verb
classifies, or one view with `--views 1`): clean; box jitter (the crop shifted up to 8 %
and scaled up to ±10 %, as a detector's box wanders around a tight crop); blur (Gaussian sigma
1.2 px); low resolution (down to 40 % of the side and back); JPEG quality 25; low light (gamma 2.2
plus noise of sigma 6); noise alone (sigma 6, a small sensor's grain); smoothed (an
edge-preserving bilateral filter, as a phone's noise reduction or a clean downscaled photo leaves
a face: texture gone, edges kept); a colour photo's grey (the face tinted warm and converted back
to grey, as a colour frame reaches the model). Per model: accuracy, and how many faces it calls
neutral (the class a doubtful face drifts to). Prints a table; never run as a test.

    python benchmarks/bench_robustness.py /tmp/fer2013 [--split val] [--model A.onnx B.onnx ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from emotiscope.classify import EmotionClassifier
from emotiscope.model_file import bundled_model_path
from emotiscope.training.data import load_any
from emotiscope.training.evaluate import map_labels, predict_faces


def jitter(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = face.shape[0]
    scale = 1 + rng.uniform(-0.1, 0.1)
    tx, ty = rng.uniform(-0.08, 0.08, 2) * s
    m = cv2.getRotationMatrix2D((s / 2, s / 2), 0, scale)
    m[:, 2] += (tx, ty)
    return cv2.warpAffine(face, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def lowres(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = face.shape[0]
    small = cv2.resize(face, (round(s * 0.4),) * 2, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)


def jpeg(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 25])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def dark(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y = 255 * (face / 255.0) ** 2.2 + rng.normal(0, 6, face.shape)
    return np.clip(y, 0, 255).astype(np.uint8)


def noise(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8)


def tinted_grey(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bgr = np.stack([face * 0.75, face * 0.95, np.minimum(face * 1.15, 255)], -1).astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


CONDITIONS = {
    "clean": lambda f, r: f,
    "box jitter": jitter,
    "blur": lambda f, r: cv2.GaussianBlur(f, (0, 0), 1.2),
    "low res": lowres,
    "jpeg 25": jpeg,
    "low light": dark,
    "noise": noise,
    "smoothed": lambda f, r: cv2.bilateralFilter(f, 5, 30, 3),
    "colour grey": tinted_grey,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a FER-2013 folder or CSV")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--views", choices=("default", "1"), default="default",
                        help="each model's default views (flip when it asks for it), or one view")
    args = parser.parse_args()
    fs = load_any(args.data)[args.split]
    models = args.model or [bundled_model_path()]
    classifiers = [EmotionClassifier(m, threads=args.threads) for m in models]
    ttas = [clf.info.tta if args.views == "default" else "none" for clf in classifiers]
    truly = int((fs.labels == fs.classes.index("neutral")).sum()) if "neutral" in fs.classes else 0
    print(f"{args.split}: {len(fs)} faces, {truly} neutral; accuracy (faces called neutral) per "
          f"condition (views: {', '.join(ttas)})")
    print(f"{'condition':<14}" + "".join(f"{m.name[:28]:>30}" for m in models))
    for name, degrade in CONDITIONS.items():
        rng = np.random.default_rng(0)
        faces = np.stack([degrade(f, rng) for f in fs.images])
        row = []
        for clf, tta in zip(classifiers, ttas, strict=True):
            y = map_labels(fs, tuple(clf.labels))
            called = predict_faces(clf, faces, tta).argmax(1)
            neutral = (called == clf.labels.index("neutral")).sum() if "neutral" in clf.labels else 0
            row.append(f"{(called == y).mean():.2%} ({neutral})")
        print(f"{name:<14}" + "".join(f"{a:>30}" for a in row), flush=True)


if __name__ == "__main__":
    main()
