"""Classifier throughput through ONNX Runtime: faces/s at batch 1 and batch 64.

Each model runs with the views it asks for by default (its "tta": the face alone, or the face and
its mirror image), as every verb runs it; `--views 1` times one view of every model instead.

Uses --model (one or several, measured side by side in alternating rounds), else the bundled
model, else a randomly initialised compact model exported to a temporary file (speed does not
depend on the weights). Prints numbers; never run as a test.

    python benchmarks/bench_classifier.py [--model PATH ...] [--threads N] [--views default|1]
        [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from emotiscope.classify import EmotionClassifier
from emotiscope.errors import ModelError
from emotiscope.model_file import bundled_model_path


def random_compact_model(folder: Path) -> Path:
    """Export an untrained compact model with valid metadata (needs the [train] extra)."""
    from emotiscope.preprocess import InputSpec
    from emotiscope.training import export
    from emotiscope.training.data import FER_CSV_NAMES
    from emotiscope.training.models import build_model, count_macs

    labels = sorted(FER_CSV_NAMES)
    model = build_model("compact", len(labels)).eval()
    meta = export.build_metadata(labels, InputSpec(), "compact", {}, {"note": "random weights"},
                                 {"macs": count_macs(model)})
    path = folder / "random-compact.onnx"
    export.export_onnx(model, path, meta)
    return path


def faces_per_second(clf: EmotionClassifier, batch: int, seconds: float, flip: bool) -> float:
    spec = clf.info.spec
    x = np.random.default_rng(0).normal(size=(batch, spec.channels, spec.size, spec.size))
    x = x.astype(np.float32)
    clf.predict_batch(x, flip_tta=flip)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict_batch(x, flip_tta=flip)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", help=".onnx models exported by emotiscope (default: bundled)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per batch size and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best is kept")
    parser.add_argument("--views", choices=("default", "1"), default="default",
                        help="the model's default views (flip TTA when it asks for it), or one view")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = args.model
        if not models:
            try:
                models = [bundled_model_path()]
            except ModelError:
                models = [random_compact_model(Path(tmp))]
                print("no bundled model: timing a randomly initialised compact model")
        classifiers = [EmotionClassifier(m, threads=args.threads) for m in models]
        flips = [clf.info.flip_tta and args.views == "default" for clf in classifiers]
        best: dict[tuple[int, int], float] = {}
        for _ in range(args.rounds):  # alternate, so a busy moment hits every model alike
            for i, clf in enumerate(classifiers):
                for batch in (1, 64):
                    fps = faces_per_second(clf, batch, args.seconds, flips[i])
                    best[i, batch] = max(best.get((i, batch), 0.0), fps)
        print(f"threads {args.threads or 'default'}, best of {args.rounds} alternating rounds")
        print(f"{'model':<44} {'views':>5} {'M MACs/face':>11} {'batch 1 faces/s':>16} "
              f"{'batch 64 faces/s':>17}")
        for i, clf in enumerate(classifiers):
            macs = clf.info.metadata.get("metrics", {}).get("macs")
            views = 2 if flips[i] else 1
            cost = macs * views / 1e6 if macs else float("nan")
            print(f"{clf.info.path.name:<44} {views:>5} {cost:>11.1f} "
                  f"{best[i, 1]:>16.1f} {best[i, 64]:>17.1f}")


if __name__ == "__main__":
    main()
