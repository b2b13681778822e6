"""Time loading a full-size (35,887-row) fer2013.csv: cold (parse) and warm (from the cache).

The CSV is generated from the FER-2013 image folders in /tmp/fer2013 (extracted from
../shared/datasets/fer2013.tar.gz when missing): train/ becomes the 28,709 Training rows, val/ is
cycled to fill 3,589 PublicTest and 3,589 PrivateTest rows. Everything is written to a temporary
folder, including the cache. Prints numbers; never run as a test.

    python benchmarks/bench_csv.py [--images /tmp/fer2013] [--csv existing.csv]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import tarfile
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

TARBALL = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013.tar.gz"
ROWS = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}


def ensure_images(folder: Path) -> Path:
    if not (folder / "train").is_dir():
        if not TARBALL.is_file():
            raise SystemExit(f"{folder}/train is missing and {TARBALL} is not there to extract")
        print(f"extracting {TARBALL} to {folder.parent} ...")
        with tarfile.open(TARBALL) as tar:
            tar.extractall(folder.parent, filter="data")
    return folder


def labelled_files(split: Path) -> list[tuple[int, Path]]:
    """(fer2013 emotion id, image path) for every image under split/<class>/."""
    from emotiscope.training.data import FER_CSV_NAMES

    return [(FER_CSV_NAMES.index(d.name), f) for d in sorted(split.iterdir()) if d.is_dir()
            for f in sorted(d.iterdir())]


def write_csv(images: Path, out: Path) -> Path:
    lut = np.array([str(v) for v in range(256)], dtype=object)
    sources = {"Training": labelled_files(images / "train"), "PublicTest": labelled_files(images / "val")}
    sources["PrivateTest"] = sources["PublicTest"][::-1]
    with open(out, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for usage, n in ROWS.items():
            for emotion, path in itertools.islice(itertools.cycle(sources[usage]), n):
                face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if face.shape != (48, 48):
                    face = cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA)
                fh.write(f"{emotion},{' '.join(lut[face.ravel()])},{usage}\n")
    return out


def timed(label: str, fn) -> dict:
    t0 = time.perf_counter()
    sets = fn()
    seconds = time.perf_counter() - t0
    counts = {split: len(fs) for split, fs in sets.items()}
    print(f"{label:38s} {seconds:6.2f} s   {counts}")
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path("/tmp/fer2013"))
    parser.add_argument("--csv", type=Path, help="time this CSV instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMOTISCOPE_CACHE"] = str(Path(tmp) / "cache")  # fresh, empty cache
        from emotiscope.training.data import load_csv

        csv = args.csv
        if csv is None:
            t0 = time.perf_counter()
            csv = write_csv(ensure_images(args.images), Path(tmp) / "fer2013.csv")
            print(f"generated {csv.stat().st_size / 1e6:.0f} MB, {sum(ROWS.values())} rows "
                  f"in {time.perf_counter() - t0:.1f} s")
        timed("cold, use_cache=False", lambda: load_csv(csv, use_cache=False))
        timed("cold, fresh cache (parse + write)", lambda: load_csv(csv))
        timed("warm (from cache)", lambda: load_csv(csv))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
