"""How FER-2013's framing compares with YuNet's face boxes: the crop margin a model should ask for.

Each FER crop is enlarged 3x, set on a grey canvas, and YuNet is run on it. The ratio of the
crop's side to the detected box's longest side tells how much margin FER-2013 puts around a face
box: margin = (ratio - 1) / 2 per side. Prints the median ratio, quartiles and implied margin.

    python benchmarks/bench_crop_margin.py --data /tmp/fer2013/val --n 300
"""

from __future__ import annotations

import argparse
import glob

import cv2
import numpy as np

from emotiscope.detect import make_detector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/fer2013/val", help="a folder of class folders of crops")
    ap.add_argument("--n", type=int, default=300, help="crops to measure (spread over the folder)")
    args = ap.parse_args()
    files = sorted(glob.glob(f"{args.data}/*/*.jpg"))
    files = files[:: max(1, len(files) // args.n)][: args.n]
    det = make_detector("yunet", min_face=10, threshold=0.5, max_side=0)
    ratios, offsets = [], []
    for f in files:
        big = cv2.resize(cv2.imread(f, cv2.IMREAD_GRAYSCALE), (144, 144), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(big, 72, 72, 72, 72, cv2.BORDER_CONSTANT, value=128)
        boxes = det.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
        if boxes:
            b = max(boxes, key=lambda b: b.area)
            ratios.append(144 / max(b.w, b.h))
            offsets.append(((b.x + b.w / 2 - 144) / 144, (b.y + b.h / 2 - 144) / 144))
    r = np.array(ratios)
    q1, med, q3 = np.percentile(r, [25, 50, 75])
    dx, dy = np.median(np.array(offsets), axis=0)
    print(f"faces found {len(r)}/{len(files)}; crop side / box side: median {med:.3f} "
          f"(quartiles {q1:.3f}-{q3:.3f}); implied margin per side {(med - 1) / 2:+.3f}; "
          f"box centre offset x {dx:+.3f}, y {dy:+.3f} of the crop side")


if __name__ == "__main__":
    main()
