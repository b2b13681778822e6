"""Files/s of `predict`, `batch --engine local` and `batch --engine ray` (1 and 2 workers).

Copies the sample photo N times into a temporary folder and times each command end to end
(start-up included: a Ray start costs seconds, so small N favours the local engine). Prints a
table; never run as a test. Needs the [ray] extra for the Ray rows (else they are left out).

    python benchmarks/bench_batch.py [--files 40] [--detector yunet]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from pathlib import Path

from emotiscope.cli import main as cli
from emotiscope.images import sample_image_path


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli(argv)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--detector", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for k in range(args.files):
            shutil.copy(sample_image_path(), photos / f"{k:05d}.jpg")
        flags = ["--detector", args.detector]
        runs = [("predict --workers 2", ["predict", str(photos), "--json", "--workers", "2"])]
        for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            if engine == "ray" and not _has_ray():
                continue
            runs.append((f"batch --engine {engine} --workers {workers}",
                         ["batch", str(photos), "--out", f"{tmp}/{engine}{workers}", "--engine",
                          engine, "--workers", str(workers)]))
        print(f"{args.files} copies of the sample photo, detector {args.detector}, end to end "
              "(start-up included); a machine busy with other work gives lower numbers")
        print(f"{'command':<36}{'seconds':>9}{'files/s':>9}")
        for name, argv in runs:
            seconds = timed([*argv, *flags])
            print(f"{name:<36}{seconds:>9.1f}{args.files / seconds:>9.1f}", flush=True)


def _has_ray() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
