"""Throughput on all cores, side by side in one run: single-worker mode against the pool.

    python benchmarks/bench_throughput.py [--only cpu,threads,predict,server,video]
        [--photos 60] [--seconds 8] [--rounds 2] [--burn 2] [--model M.onnx]

Prints, each measured in alternating (paired) rounds so that background load hits both arms:
- cpu: CPU ms, system ms and page faults per YuNet detection on a 640x480 frame, and wall ms
  per whole image, with glibc's thresholds raised (emotiscope's default) and without (the
  process is started with GLIBC_TUNABLES= set, which makes emotiscope leave glibc alone).
- threads: one image's latency and a 2-worker pool's images/s with the detector's OpenMP
  threads at the default and at 1 (and ONNX Runtime at its default / 1), on the machine as it
  is and with --burn busy processes started beside it (the loaded regime).
- predict: files/s over a folder of --photos photos: a loop of one `predict` call per file
  (in-process), `predict FOLDER --workers 1`, and `predict FOLDER` (one worker per core).
- server: `emotiscope serve --workers 1` against the default pool: requests/s with 1 and 8
  clients for --seconds each, with p50/p99 latency.
- video: analysis fps of a 640x480 one-face video, thresholds raised or not.
- bigphoto: the sample photo upscaled 3-8x (up to 8300 px wide) as JPEG: ms per photo, faces
  found, box IoU and labels, full decode against bigphoto.analyze_photo (DCT-reduced decode).
Targets (2 cores): 8-client req/s >= 1.6x the 1-client rate; predict >= 1.5x the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SECTIONS = ("cpu", "threads", "predict", "server", "video", "bigphoto")


def child(kind: str, mallopt: bool, *extra: str) -> dict:
    """Run `--child kind` in a fresh process (allocator settings are per process)."""
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if not mallopt:
        env["GLIBC_TUNABLES"] = ""  # emotiscope then leaves glibc's thresholds alone
    done = subprocess.run([sys.executable, __file__, "--child", kind, *extra], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime, r.ru_minflt


def child_cpu(model: str | None) -> dict:
    import scenes

    from emotiscope import _alloc
    from emotiscope.pipeline import EmotionRecognizer

    frame = scenes.one_face_frame()[0]
    recognizer = EmotionRecognizer(model, "yunet")
    for _ in range(5):
        recognizer(frame)
    n = 40
    cpu0, sys0, flt0 = usage()
    start = time.perf_counter()
    for _ in range(n):
        recognizer.detect(frame)
    wall = time.perf_counter() - start
    cpu1, sys1, flt1 = usage()
    start = time.perf_counter()
    for _ in range(n):
        recognizer(frame)
    image = time.perf_counter() - start
    return {"set": _alloc._state, "cpu": (cpu1 - cpu0) / n * 1e3, "sys": (sys1 - sys0) / n * 1e3,
            "faults": (flt1 - flt0) / n, "detect": wall / n * 1e3, "image": image / n * 1e3}


def child_video(model: str | None) -> dict:
    from bench_video import make_video

    from emotiscope.pipeline import EmotionRecognizer
    from emotiscope.videoanalysis import VideoAnalyzer

    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "v.mp4", 150)
        recognizer = EmotionRecognizer(model, "yunet")
        start = time.perf_counter()
        frames = sum(1 for _ in VideoAnalyzer(recognizer).run_file(video))
        return {"fps": frames / (time.perf_counter() - start)}


def section_cpu(args) -> None:
    print("\n## CPU per detection (YuNet, 640x480, one face), glibc thresholds raised or not")
    print("| thresholds | CPU ms/detection | system ms | page faults | wall ms/detection "
          "| wall ms/image |")
    print("|---|---|---|---|---|---|")
    for mallopt in [True, False] * args.rounds:
        r = child("cpu", mallopt, *args.model_args)
        print(f"| {'raised' if r['set'] else 'glibc default'} | {r['cpu']:.1f} | {r['sys']:.1f} "
              f"| {r['faults']:.0f} | {r['detect']:.1f} | {r['image']:.1f} |")


def section_video(args) -> None:
    print("\n## Video analysis fps (640x480, one face, 150 frames, default detect-every)")
    for mallopt in [True, False] * args.rounds:
        r = child("video", mallopt, *args.model_args)
        print(f"thresholds {'raised' if mallopt else 'default'}: {r['fps']:.1f} fps")


@contextlib.contextmanager
def burning(count: int):
    """`count` busy processes beside the benchmark: the loaded regime."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def section_threads(args) -> None:
    import scenes

    from emotiscope.workers import build_recognizers, ordered_map

    frames = [scenes.one_face_frame()[0], scenes.group_frame()[0]]
    arms = {"default threads": build_recognizers(1, model=args.model, detector="yunet") * 2,
            "1 thread each": build_recognizers(2, model=args.model, detector="yunet")}
    print("\n## Threads per detection: one image's latency, and a 2-worker pool's images/s")
    print("| regime | threads | 1 image ms (median) | pool of 2, images/s |")
    print("|---|---|---|---|")
    for burn in sorted({0, args.burn}):
        with burning(burn):
            for _ in range(args.rounds):
                for name, recognizers in arms.items():
                    times = []
                    for k in range(20):
                        start = time.perf_counter()
                        recognizers[0](frames[k % 2])
                        times.append(time.perf_counter() - start)
                    pool = recognizers if name == "1 thread each" else build_recognizers(
                        1, model=args.model, detector="yunet") + recognizers[:1]
                    rate = pool_rate(pool, frames, ordered_map)
                    regime = f"+{burn} busy processes" if burn else "as is"
                    print(f"| {regime} | {name} | {statistics.median(times) * 1e3:.1f} "
                          f"| {rate:.1f} |")


def pool_rate(recognizers, frames, ordered_map, n: int = 40) -> float:
    from emotiscope.workers import RecognizerPool

    pool = RecognizerPool(recognizers)

    def work(k: int):
        with pool.use() as recognizer:
            return recognizer(frames[k % len(frames)])

    start = time.perf_counter()
    for _ in ordered_map(work, range(n), len(recognizers)):
        pass
    return n / (time.perf_counter() - start)


def make_photos(folder: Path, count: int) -> list[Path]:
    """Variants of the sample photo (flipped, cropped, scaled 0.6-1.4x) as JPEGs."""
    from emotiscope.images import encode_image, load_image, sample_image_path

    sample = load_image(sample_image_path())
    paths = []
    for k in range(count):
        image = sample[:, ::-1] if k % 2 else sample[:, (k % 7) * 20:]
        scale = 0.6 + 0.8 * (k % 9) / 8
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        paths.append(folder / f"photo{k:03d}.jpg")
        paths[-1].write_bytes(encode_image(image, ".jpg"))
    return paths


def section_predict(args) -> None:
    from emotiscope.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.photos)
        common = ["--json", *args.model_args]
        arms = {
            "loop of single predict calls": lambda: [main(["predict", str(p), *common])
                                                     for p in paths],
            "predict FOLDER --workers 1": lambda: main(["predict", tmp, "--workers", "1",
                                                        *common]),
            "predict FOLDER (pool)": lambda: main(["predict", tmp, *common]),
        }
        results: dict[str, list[float]] = {name: [] for name in arms}
        outputs: dict[str, str] = {}
        for _ in range(args.rounds):
            for name, run in arms.items():
                buffer = io.StringIO()
                start = time.perf_counter()
                with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
                    run()
                results[name].append(len(paths) / (time.perf_counter() - start))
                outputs[name] = buffer.getvalue()
    loop = statistics.median(results["loop of single predict calls"])
    print(f"\n## predict over {len(paths)} photos (JSON lines; median of {args.rounds} rounds)")
    print("| run | files/s | vs the loop | same output as the loop |")
    print("|---|---|---|---|")
    for name, rates in results.items():
        rate = statistics.median(rates)
        same = outputs[name] == outputs["loop of single predict calls"]
        print(f"| {name} | {rate:.1f} | {rate / loop:.2f}x | {same} |")


def section_server(args) -> None:
    from bench_serve import load, percentile, started_server

    from emotiscope.images import sample_image_path

    image = sample_image_path().read_bytes()
    print(f"\n## emotiscope serve: {args.seconds:g} s per row, the sample photo "
          f"({len(image) // 1024} KB)")
    print("| workers | clients | req/s | p50 ms | p99 ms | x 1-client rate |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for workers in (1, None):
            with started_server(args.model, None, workers=workers) as server:
                asyncio.run(load(server.url, image, 2, 10, 30))  # warm-up
                one = None
                for clients in (1, 8):
                    latencies, outcomes, elapsed = asyncio.run(
                        load(server.url, image, clients, 10**9, args.seconds))
                    rate = len(latencies) / elapsed
                    one = one or rate
                    print(f"| {workers or 'pool (default)'} | {clients} | {rate:.1f} "
                          f"| {percentile(latencies, 50) * 1e3:.0f} "
                          f"| {percentile(latencies, 99) * 1e3:.0f} | {rate / one:.2f}x |")


def iou(a, b) -> float:
    w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return w * h / (a.w * a.h + b.w * b.h - w * h)


def section_bigphoto(args) -> None:
    from emotiscope.bigphoto import analyze_photo
    from emotiscope.images import encode_image, load_image, sample_image_path
    from emotiscope.pipeline import EmotionRecognizer

    recognizer = EmotionRecognizer(args.model, "yunet")

    def reduced_run(data: bytes):
        return analyze_photo(recognizer, data)

    sample = load_image(sample_image_path())
    print("\n## Big photos: full decode against DCT-reduced decode (bigphoto.analyze_photo)")
    print("| photo | full ms | reduced ms | speed-up | faces full / reduced | same labels "
          "| min box IoU |")
    print("|---|---|---|---|---|---|---|")
    for scale in (3, 4, 6, 8):
        big = cv2.resize(sample, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        data = encode_image(big, ".jpg", quality=92)
        full = recognizer(data)
        reduced = analyze_photo(recognizer, data)
        times = {"full": [], "reduced": []}
        for _ in range(args.rounds * 2):
            for name, run in (("full", recognizer), ("reduced", reduced_run)):
                start = time.perf_counter()
                run(data)
                times[name].append(time.perf_counter() - start)
        t_full, t_red = (statistics.median(times[k]) * 1e3 for k in ("full", "reduced"))
        same = [a.label for a in full] == [b.label for b in reduced]
        overlap = min((iou(a.box, b.box) for a, b in zip(full, reduced, strict=False)),
                      default=float("nan"))
        print(f"| {big.shape[1]}x{big.shape[0]} | {t_full:.0f} | {t_red:.0f} "
              f"| {t_full / t_red:.2f}x | {len(full)} / {len(reduced)} | {same} "
              f"| {overlap:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--burn", type=int, default=2, help="busy processes for the loaded regime")
    parser.add_argument("--model", help="ONNX model (default: bundled)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model_args = ["--model", args.model] if args.model else []
    if args.child:
        result = {"cpu": child_cpu, "video": child_video}[args.child](args.model)
        print(json.dumps(result))
        return
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start "
          f"(other processes share this machine: compare rows, not absolute numbers)")
    for name in args.only.split(","):
        globals()[f"section_{name}"](args)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
