"""How far a teacher's fixed soft targets are from its judgement of the faces a student is shown.

`train --distill T` computes each training face's target once, from the stored face (averaged
over `--distill-tta` views); the student is then shown that face augmented (rotated, cropped,
blurred, part of it erased...). `--distill-tta augmented` asks the teacher about the augmented
face instead, every step. This prints, for a sample of training faces, both kinds of target:
their accuracy against the labels, how often they name the same class, the mean KL divergence
between them and their mean top probability. Numbers only; never run as a test.

    python benchmarks/bench_consistency.py /tmp/fer2013 --teacher T.onnx [--faces 3000]
        [--views multicrop] [--augment blur=0.15,lowres=0.15,dark=0.1,jpeg=0.1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from emotiscope.classify import EmotionClassifier
from emotiscope.training.augment import augment_batch
from emotiscope.training.config import AugmentConfig, parse_augment
from emotiscope.training.data import load_any
from emotiscope.training.evaluate import TTA_MODES, map_labels, predict_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a FER-2013 folder or CSV")
    parser.add_argument("--teacher", type=Path, required=True, help="an .onnx model of ours")
    parser.add_argument("--faces", type=int, default=3000, help="training faces sampled")
    parser.add_argument("--views", choices=TTA_MODES, default="multicrop",
                        help="the fixed targets' views, as --distill-tta")
    parser.add_argument("--augment", default="", help="as train --augment")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher = EmotionClassifier(args.teacher, threads=args.threads)
    fs = load_any(args.data)["train"]
    pick = np.random.default_rng(0).choice(len(fs), min(args.faces, len(fs)), replace=False)
    faces, y = fs.images[pick], map_labels(fs, tuple(teacher.labels))[pick]
    cfg = parse_augment(args.augment, AugmentConfig()) if args.augment else AugmentConfig()
    shown = augment_batch(torch.from_numpy(faces).float()[:, None], cfg, torch.Generator().manual_seed(0))
    shown_faces = shown[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    fixed = predict_faces(teacher, faces, args.views)
    seen = predict_faces(teacher, shown_faces, "none")
    kl = (fixed * (np.log(fixed + 1e-9) - np.log(seen + 1e-9))).sum(1)
    print(f"{len(faces)} training faces, teacher {args.teacher.name}, augmentation {cfg}")
    print(f"{'target':<36}{'accuracy':>10}{'top prob':>10}")
    print(f"{f'fixed ({args.views}, stored face)':<36}{(fixed.argmax(1) == y).mean():>10.1%}"
          f"{fixed.max(1).mean():>10.3f}")
    print(f"{'consistent (the augmented face)':<36}{(seen.argmax(1) == y).mean():>10.1%}"
          f"{seen.max(1).mean():>10.3f}")
    print(f"same class named: {(fixed.argmax(1) == seen.argmax(1)).mean():.1%}; "
          f"mean KL(fixed || consistent) {kl.mean():.3f} nats")


if __name__ == "__main__":
    main()
