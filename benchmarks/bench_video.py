"""Video throughput: frames per second for a generated 640x480 video with one face.

    python benchmarks/bench_video.py [--model M.onnx] [--frames 300] [--detect-every 5]

Prints the cost of each stage (ms per call) and the fps of: decoding alone, analysis
(decode + detect/track + classify), and the full `emotiscope video -o out.mp4 --csv` path.
Without --model it uses the bundled model, or else a random-weight tiny model (much cheaper
than a real one: say which when you report numbers). Target: >= 60 fps on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_video(path: Path, frames: int, fps: float = 30.0) -> Path:
    """One face (from the package's sample photo) drifting and zooming over a 640x480 scene."""
    from emotiscope.images import sample_image_path

    photo = cv2.imread(str(sample_image_path()))  # BGR, written as it is
    face = cv2.resize(photo[0:300, 20:300], (224, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    rng = np.random.default_rng(0)
    background = rng.integers(60, 120, (480, 640, 3), dtype=np.uint8)
    for i in range(frames):
        frame = background.copy()
        phase = i / frames * 2 * np.pi
        scale = 1.0 + 0.15 * np.sin(phase)
        patch = cv2.resize(face, None, fx=scale, fy=scale)
        x = int(200 + 150 * np.sin(phase))
        y = int(100 + 20 * np.cos(phase))
        h, w = min(patch.shape[0], 480 - y), min(patch.shape[1], 640 - x)
        frame[y:y + h, x:x + w] = patch[:h, :w]
        writer.write(frame)
    writer.release()
    return path


def pick_model(model: str | None, folder: Path) -> tuple[str, str]:
    if model:
        return model, model
    from emotiscope.errors import ModelError
    from emotiscope.model_file import bundled_model_path

    try:
        path = bundled_model_path()
        return str(path), f"bundled {path.name}"
    except ModelError:
        sys.path.insert(0, str(ROOT / "tests"))
        from fixtures.tiny_model import make_tiny_model

        return str(make_tiny_model(folder / "tiny.onnx")), "TINY random-weight test model"


def per_call_ms(func, repeat: int = 30) -> float:
    func()
    start = time.perf_counter()
    for _ in range(repeat):
        func()
    return (time.perf_counter() - start) / repeat * 1000


def stages(recognizer, video: Path) -> None:
    from emotiscope.draw import annotate
    from emotiscope.videoanalysis import shift_box
    from emotiscope.videoread import VideoSource

    with VideoSource(video) as source:
        a, b = source.read(), source.read()
    grey_a, grey_b = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
    boxes = recognizer.detect(a)
    faces = recognizer.classify(a, boxes)
    print(f"faces in frame 0: {len(boxes)}")
    print(f"  detect         {per_call_ms(lambda: recognizer.detect(a)):7.2f} ms/frame")
    print(f"  classify       {per_call_ms(lambda: recognizer.classify(a, boxes)):7.2f} ms/frame")
    print(f"  optical flow   {per_call_ms(lambda: [shift_box(grey_a, grey_b, x) for x in boxes]):7.2f}"
          " ms/frame")
    print(f"  annotate       {per_call_ms(lambda: annotate(a, faces, min_side=0)):7.2f} ms/frame")
    with tempfile.TemporaryDirectory() as tmp:
        writer = cv2.VideoWriter(str(Path(tmp) / "w.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30,
                                 (640, 480))
        print(f"  encode mp4v    {per_call_ms(lambda: writer.write(a)):7.2f} ms/frame")
        writer.release()
        from emotiscope.videowrite import H264Writer, h264_available

        if h264_available():  # alternate two frames so the encoder has motion to code
            h264, frames = H264Writer(Path(tmp) / "w.h264.mp4", 30, (640, 480)), [a, b]
            ms = per_call_ms(lambda: h264.write(frames[h264.frames_written % 2]), repeat=60)
            print(f"  encode H.264   {ms:7.2f} ms/frame (PyAV libx264 veryfast)")
            h264.close()
    from emotiscope.shots import CutDetector

    cuts, greys = CutDetector(), itertools.cycle([grey_a, grey_b])
    print(f"  cut test       {per_call_ms(lambda: cuts.is_cut(next(greys))):7.2f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--detect-size", type=int, default=480)
    args = parser.parse_args()

    from emotiscope.cli import main as cli_main
    from emotiscope.pipeline import EmotionRecognizer
    from emotiscope.videoanalysis import VideoAnalyzer
    from emotiscope.videoread import VideoSource

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, described = pick_model(args.model, folder)
        video = make_video(folder / "bench.mp4", args.frames)
        print(f"video: 640x480, {args.frames} frames, one face; model: {described}; "
              f"detect every {args.detect_every} at {args.detect_size} px; cv2 threads {cv2.getNumThreads()}")
        start = time.perf_counter()
        recognizer = EmotionRecognizer(model=model, max_side=args.detect_size)
        print(f"model + detector load: {time.perf_counter() - start:.2f} s")
        stages(recognizer, video)

        def timed(label: str, work) -> None:
            start = time.perf_counter()
            n = work()
            elapsed = time.perf_counter() - start
            print(f"{label:<44} {n / elapsed:7.1f} fps  ({n} frames in {elapsed:.2f} s)")

        def decode() -> int:
            with VideoSource(video) as source:
                return sum(1 for _ in source)

        def analyse() -> int:
            analyzer = VideoAnalyzer(recognizer, detect_every=args.detect_every)
            return sum(1 for _ in analyzer.run_file(video))

        def full() -> int:
            out = [str(video), "--model", model, "-o", str(folder / "out.mp4"), "--csv",
                   str(folder / "out.csv"), "--detect-every", str(args.detect_every),
                   "--max-side", str(args.detect_size), "--force"]
            assert cli_main(["video", *out]) == 0
            return args.frames

        timed("decode only", decode)
        timed("analyse (decode+detect/track+classify)", analyse)
        timed("emotiscope video -o .mp4 --csv (incl. load)", full)


if __name__ == "__main__":
    main()
