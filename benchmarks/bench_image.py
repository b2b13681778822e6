"""Milliseconds per 640x480 frame (one face, six faces), split into detection and
classification, and faces/s for classification alone at batch 1 and 64.

    python benchmarks/bench_image.py [--model M.onnx] [--detector auto] [--repeat 50]

Frames are built from the shipped sample photo (scenes.py). Without --model the bundled model
is used; the numbers depend on the model's size, so say which one was measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scenes
from bench_classifier import faces_per_second

from emotiscope.pipeline import EmotionRecognizer


def median_ms(func, repeat: int) -> float:
    func()  # warm-up: first calls allocate
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def frame_row(recognizer: EmotionRecognizer, frame: np.ndarray, repeat: int) -> tuple:
    boxes = recognizer.detect(frame)
    detect_ms = median_ms(lambda: recognizer.detect(frame), repeat)
    classify_ms = median_ms(lambda: recognizer.classify(frame, boxes), repeat)
    total_ms = median_ms(lambda: recognizer(frame), repeat)
    return len(boxes), detect_ms, classify_ms, total_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model (default: bundled)")
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    frames = {"1 face": scenes.one_face_frame()[0], "6 faces": scenes.group_frame()[0]}
    print("| detector, max side | frame 640x480 | faces found | detect ms | classify ms "
          "| end to end ms |")
    print("|---|---|---|---|---|---|")
    for max_side in (None, 320):
        recognizer = EmotionRecognizer(args.model, args.detector, max_side=max_side,
                                       threads=args.threads)
        label = f"{recognizer.detector.name}, {max_side or 'default'}"
        for name, frame in frames.items():
            found, det, cls, total = frame_row(recognizer, frame, args.repeat)
            print(f"| {label} | {name} | {found} | {det:.1f} | {cls:.2f} | {total:.1f} |")
    info = recognizer.classifier.info
    print(f"\nmodel: {info.path.name} ({info.metadata.get('arch')}), "
          f"input {info.spec.size}x{info.spec.size}x{info.spec.channels}")
    for batch in (1, 64):
        rate = faces_per_second(recognizer.classifier, batch, seconds=2.0)
        print(f"classification alone, batch {batch}: {rate:,.0f} faces/s")


if __name__ == "__main__":
    main()
