"""Group photos: faces found and seconds of detection, one pass against the photo path (crowd.py:
the finer pass where the first finds small faces, the probe where it finds none) and against
detection at full resolution (--max-side 0), and against the photo path with a --min-face large
enough to turn its second look off, side by side.

    python benchmarks/bench_crowd.py [--threads 1] [--repeat 3] [--negatives DIR]

Scenes are built from the shipped sample photo (scenes.py): crowds whose faces are 60, 30 and 22
px wide in 3000 px photos, and face-free photos (grey, blurred noise, and without --negatives
scikit-image's face-free photos, where installed, enlarged to 4000 px). "found" counts faces
matched to a true box; "false" boxes matching none.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import scenes

from emotiscope.crowd import refine
from emotiscope.detect import make_detector, set_detector_threads
from emotiscope.images import iter_image_paths, load_image, sample_image_path

LARGE_MIN_FACE = 150  # px: 24 px at 640 of a 4000 px photo, so no second look (crowd.py)


def crowd_scenes() -> dict[str, tuple[np.ndarray, list]]:
    sample = load_image(sample_image_path())
    out = {"sample photo (1039 px, 3 faces)": (sample, scenes.sample_boxes())}
    for face_px, (width, height), cols, rows in ((60, (3000, 1500), 8, 3),
                                                 (30, (3000, 1000), 11, 3),
                                                 (22, (3000, 1000), 11, 3)):
        out[f"{cols * rows} faces of {face_px} px in {width} px"] = scenes.small_faces_frame(
            face_px, width, height, count=cols * rows, cols=cols)
    return out


def negative_scenes(folder: Path | None) -> dict[str, tuple[np.ndarray, list]]:
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8), (0, 0), 3)
    out = {"grey 4000 px": (np.full((3000, 4000, 3), 128, np.uint8), []),
           "blurred noise 4000 px": (noise, [])}
    for path in iter_image_paths([folder]) if folder else []:
        if any(name in path.name for name in ("astronaut", "camera", "lfw")):
            continue  # photos of people
        image = load_image(path)
        scale = 4000 / max(image.shape[:2])
        out[path.stem] = (cv2.resize(image, None, fx=scale, fy=scale,
                                     interpolation=cv2.INTER_CUBIC), [])
    return out


def timed(func, repeat: int) -> tuple[list, float]:
    boxes, times = func(), []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return boxes, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--negatives", type=Path, default=None)
    args = parser.parse_args()
    spec = find_spec("skimage")
    folder = args.negatives or (Path(spec.origin).parent / "data" if spec and spec.origin else None)
    detector = make_detector("auto")
    set_detector_threads(detector, args.threads)
    full = copy.copy(detector)
    full.max_side = 0  # type: ignore[attr-defined]
    big = copy.copy(detector)
    big.min_face = LARGE_MIN_FACE  # type: ignore[attr-defined]
    ways = {"one pass": detector.detect,
            "photo path": lambda image: refine(detector, image, detector.detect(image)),
            "full resolution": full.detect,
            f"photo path, min face {LARGE_MIN_FACE}": lambda image: refine(big, image, big.detect(image))}
    print("| scene | faces | " + " | ".join(f"{w}: found / false / s" for w in ways) + " |")
    print("|---|---|" + "---|" * len(ways))
    totals = {w: [0, 0, 0.0] for w in ways}
    for name, (image, truth) in {**crowd_scenes(), **negative_scenes(folder)}.items():
        cells = []
        for way, func in ways.items():
            boxes, seconds = timed(lambda f=func, im=image: f(im), args.repeat)
            found, false = scenes.matches(boxes, truth)
            cells.append(f"{found} / {false} / {seconds:.2f}")
            if not truth:
                totals[way][1] += false
                totals[way][2] += seconds
        print(f"| {name} | {len(truth)} | " + " | ".join(cells) + " |")
    print("| face-free photos: false boxes / seconds in all | | " + " | ".join(
        f"- / {t[1]} / {t[2]:.2f}" for t in totals.values()) + " |")


if __name__ == "__main__":
    main()
