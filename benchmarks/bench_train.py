"""Training throughput (images/s) on this CPU for each architecture.

A few SGD steps at batch 128 on random 48x48 faces, through the same pieces the training loop
uses: augment_batch -> normalize -> forward -> label-smoothed cross-entropy -> backward -> step.
Prints numbers; never run as a test.

    python benchmarks/bench_train.py [--arch compact resnet] [--steps 5] [--batch 128] [--threads 2]
                                     [--widths 40,80,160,240]   # each arch in float32 and in
                                                                # bf16 + channels-last, as train
    python benchmarks/bench_train.py --nproc [--arch compact]   # DDP: 1 process x 2 threads
                                                                # vs 2 processes x 1 thread
    python benchmarks/bench_train.py --arch compact --widths 40,80,160,240 --teacher T.pt
        # also with a consistent teacher (--distill T.pt --distill-tta augmented): its forward
        # pass on every augmented batch
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from emotiscope.preprocess import normalize
from emotiscope.training.augment import AugmentConfig, augment_batch
from emotiscope.training.config import TrainConfig
from emotiscope.training.models import build_model, count_macs
from emotiscope.training.optim import make_optimizer


def bench(arch: str, steps: int, batch: int, warmup: int = 1, amp: bool = False,
          model_args: dict | None = None, teacher=None) -> tuple[float, float]:
    """(training images/s, augmentation share of the step time) for one architecture; `amp`:
    bfloat16 autocast and channels-last tensors, as `train` uses where the CPU has native bf16;
    `teacher`: a ConsistentTeacher judging every augmented batch, as `--distill-tta augmented`.
    Tensors are channels-last in float32 too, as in `train` (1.2x over contiguous on AVX2 Zen 3)."""
    gen = torch.Generator().manual_seed(0)
    model = build_model(arch, 7, **(model_args or {})).train().to(memory_format=torch.channels_last)
    cfg = TrainConfig(arch=arch, batch_size=batch)
    opt, sched = make_optimizer(model, cfg, steps + warmup)
    faces = torch.randint(0, 256, (batch, 48, 48), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 7, (batch,), generator=gen)
    aug_time = total = 0.0
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        x = augment_batch(faces.float()[:, None], AugmentConfig(), gen)
        t1 = time.perf_counter()
        if teacher is not None:
            teacher(x)
        x = normalize(x, 0.5, 0.25).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= warmup:
            aug_time += t1 - t0
            total += time.perf_counter() - t0
    return steps * batch / total, aug_time / total


def _ddp_step_rate(arch: str, steps: int, batch: int, amp: bool = False,
                   model_args: dict | None = None) -> float:
    """Images/s of `train --nproc`'s step (each rank its share of the batch, DDP gradients
    all-reduced), measured in every rank; rank 0's number is returned by launch. `amp`: bf16
    autocast, where the CPU has native bf16; channels-last always, as train uses."""
    from emotiscope.training import distributed

    gen = torch.Generator().manual_seed(0)
    model = build_model(arch, 7, **(model_args or {})).train().to(memory_format=torch.channels_last)
    net = distributed.wrap(model, torch.device("cpu"))
    opt, sched = make_optimizer(model, TrainConfig(arch=arch, batch_size=batch), steps + 1)
    faces = torch.randint(0, 256, (batch, 48, 48), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 7, (batch,), generator=gen)
    idx = distributed.shard(torch.arange(batch))
    start = 0.0
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # after one warm-up step
        x = augment_batch(faces[idx].float()[:, None], AugmentConfig(), gen)
        x = normalize(x, 0.5, 0.25).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), labels[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return steps * batch / (time.perf_counter() - start)


def bench_nproc(archs: list[str], steps: int, batch: int, model_args: dict) -> None:
    from emotiscope.training.distributed import launch

    print(f"torch {torch.__version__}, batch {batch} per step in all, {steps} timed step(s); "
          "the same step `train --nproc` takes (gloo on CPU). Numbers from a machine busy with "
          "other work are lower and noisier than on an idle one.")
    print(f"{'arch':<10}{'mode':>9}{'processes x threads':>22}{'img/s':>10}")
    bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    for arch in archs:
        for amp in (False, True) if bf16 else (False,):
            for nproc, threads in ((1, 2), (2, 1)):
                rate = launch(nproc, threads, _ddp_step_rate, arch, steps, batch, amp, model_args)
                mode = "bf16" if amp else "float32"
                print(f"{arch:<10}{mode:>9}{f'{nproc} x {threads}':>22}{rate:>10.0f}", flush=True)


def _teacher(spec: str, amp: bool):
    """The consistent teacher `train --distill SPEC --distill-tta augmented` builds."""
    import numpy as np

    from emotiscope.training.data import FER_CSV_NAMES, FaceSet
    from emotiscope.training.distill import ConsistentTeacher

    classes = FaceSet(np.zeros((1, 48, 48), np.uint8), np.zeros(1, np.int64), FER_CSV_NAMES)
    return ConsistentTeacher(spec, classes, "cpu", amp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["compact", "resnet"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", help="channels per stage, e.g. 40,80,160,240 (4 stages)")
    parser.add_argument("--teacher", metavar="TEACHER[,TEACHER...]",
                        help="also time each step with these teachers judging it (.pt or .onnx)")
    parser.add_argument("--nproc", action="store_true",
                        help="compare train --nproc 1 --threads 2 with --nproc 2 --threads 1")
    args = parser.parse_args()
    model_args = {"widths": [int(w) for w in args.widths.split(",")]} if args.widths else {}
    if args.nproc:
        bench_nproc(args.arch, args.steps, args.batch, model_args)
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
          f"{args.steps} timed step(s) after 1 warm-up, augmentation on, channels-last")
    bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    for arch in args.arch:
        macs = count_macs(build_model(arch, 7, **model_args))
        for amp in (False, True) if bf16 else (False,):
            for teacher in (None, _teacher(args.teacher, amp)) if args.teacher else (None,):
                ips, aug = bench(arch, args.steps, args.batch, amp=amp, model_args=model_args,
                                 teacher=teacher)
                epoch_min = 28709 / ips / 60
                mode = ("bf16" if amp else "float32") + (" +teacher" if teacher else "")
                print(f"{arch:8s} {mode:16s} {macs / 1e6:7.1f} M MACs/face  {ips:8.1f} train images/s  "
                      f"(augmentation {aug:.0%} of step time; one FER-2013 epoch ~ {epoch_min:.1f} min)")
    if not bf16:
        print("this CPU has no native bfloat16: train runs in float32 here")


if __name__ == "__main__":
    main()
