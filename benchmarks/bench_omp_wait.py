"""YuNet speed with and without OMP_WAIT_POLICY=PASSIVE, each in a fresh process.

    python benchmarks/bench_omp_wait.py

Run it while another process keeps the cores busy (a training job, say): that is when
busy-waiting OpenMP threads hurt. Prints median / 90th percentile / max ms per 640x480 frame.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import statistics, sys, time
sys.path.insert(0, {here!r})
import scenes
from emotiscope.yunet import YuNetDetector
frame = scenes.one_face_frame()[0]
detector = YuNetDetector()
detector.detect(frame)
times = []
for _ in range(40):
    start = time.perf_counter()
    detector.detect(frame)
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(f"median {{statistics.median(times):.1f}}, p90 {{times[35]:.1f}}, max {{times[-1]:.1f}} ms")
"""


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for policy in ("unset", "PASSIVE", "unset", "PASSIVE"):
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        # emotiscope sets PASSIVE only where the variable is absent; an empty value stops it
        # from doing so and libgomp ignores it, so "unset" runs with OpenMP's default policy.
        env["OMP_WAIT_POLICY"] = "PASSIVE" if policy == "PASSIVE" else ""
        done = subprocess.run([sys.executable, "-c", CHILD.format(here=here)], env=env,
                              capture_output=True, text=True, check=True)
        print(f"OMP_WAIT_POLICY {policy:8s} {done.stdout.strip()}")


if __name__ == "__main__":
    main()
