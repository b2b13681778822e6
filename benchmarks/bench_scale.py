"""What emotiscope costs per file and per face-frame at scale, without a model or a real input:

- listing a folder tree of N empty .jpg files the way `predict DIR` and `batch DIR` do (time
  per file and the peak memory the list adds);
- keeping one hour of a video's faces for `video`'s summary and plot (Timeline: bytes per
  face-frame, measured with tracemalloc, and the time to draw the plot).

Everything is generated in a temporary folder and removed. Prints numbers; never run as a test.

    python benchmarks/bench_scale.py [--files 50000] [--folders 50] [--minutes 60] [--faces 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from emotiscope.batch import collect_inputs
from emotiscope.images import iter_image_paths
from emotiscope.timeline import Timeline, plot_timeline
from emotiscope.types import Box, FaceEmotion

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def make_tree(root: Path, files: int, folders: int) -> None:
    per = -(-files // folders)
    for i in range(files):
        folder = root / f"d{i // per:04d}"
        if i % per == 0:
            folder.mkdir()
        (folder / f"{i:08d}.jpg").touch()


def measure(name: str, fn, files: int) -> None:
    """Timed on its own, then again under tracemalloc (which slows Python) for the memory."""
    fn()  # the folders in the page cache, as on a second run
    start = time.perf_counter()
    found = fn()
    seconds = time.perf_counter() - start
    assert len(found) == files, (name, len(found))
    del found
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:<28} {1e6 * seconds / files:>8.1f} us/file {peak / files:>8.0f} B/file (peak, Python)")


def bench_listing(files: int, folders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        make_tree(root, files, folders)
        print(f"listing {files} empty .jpg files in {folders} folders")
        measure("predict DIR (listing)", lambda: list(iter_image_paths([str(root)])), files)
        measure("batch DIR (listing)", lambda: collect_inputs([str(root)])[0], files)


def face(track: int, rng: np.random.Generator) -> FaceEmotion:
    probs = rng.dirichlet(np.ones(len(LABELS))).astype(np.float32)
    return FaceEmotion(Box(10 + 50 * track, 10, 40, 40, 0.9), LABELS[int(probs.argmax())],
                       dict(zip(LABELS, probs.tolist(), strict=True)), track_id=track)


def bench_timeline(minutes: float, faces: int, fps: float = 30.0) -> None:
    rng = np.random.default_rng(0)
    pool = [[face(t, rng) for t in range(faces)] for _ in range(64)]  # reused: only Timeline grows
    frames = int(minutes * 60 * fps)
    timeline = Timeline(LABELS, fps)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(frames):
        timeline.add(i / fps, pool[i % len(pool)])
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"video timeline, {minutes:g} min at {fps:g} fps with {faces} faces "
          f"({frames * faces} face-frames): "
          f"{grown / (frames * faces):.0f} B/face-frame ({grown / 1e6:.1f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        plot_timeline(timeline, Path(tmp) / "plot.png")
        print(f"video --plot of it: {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--folders", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--faces", type=int, default=5)
    args = parser.parse_args()
    bench_listing(args.files, args.folders)
    bench_timeline(args.minutes, args.faces)


if __name__ == "__main__":
    main()
