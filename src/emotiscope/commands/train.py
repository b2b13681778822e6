"""`emotiscope train`: train a classifier on FER-2013 (CSV or folders) or your own class folders."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..errors import DependencyError
from ..outputs import display


def register(sub) -> None:
    p = sub.add_parser("train", help="train an emotion classifier (needs the [train] extra)",
                       description="Train on fer2013.csv, a train/ val/ folder layout or your own "
                       "class folders. Every run writes a new folder under --out.")
    p.add_argument("data", nargs="?", help="fer2013.csv or a folder (train/<class>/*, or <class>/*)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last.pt")
    g = p.add_argument_group("data")
    g.add_argument("--val", help="a separate CSV/folder to validate on (default: the data's val split)")
    g.add_argument("--val-fraction", type=float, help="hold out this fraction of the training data")
    g.add_argument("--classes", help="comma-separated subset, e.g. happy,sad,neutral")
    g.add_argument("--balance", help="'min' (cut every class to the rarest) or N images per class")
    g.add_argument("--strict", action="store_true", help="fail on unreadable images instead of skipping")
    g.add_argument("--crop-margin", type=float, default=0.0,
                   help="margin per side added to detected face boxes at inference, as a fraction "
                   "of the box (default 0: FER-2013 crops match YuNet boxes, see MODEL_CARD.md)")
    m = p.add_argument_group("model and optimisation")
    m.add_argument("--arch", default="compact", help="compact (CPU) or resnet (GPU)")
    m.add_argument("--widths", metavar="W,W,...",
                   help="channels per stage of the compact/resnet network, e.g. 40,80,160,240 "
                   "(default 24,48,96,144 compact, 64,128,256,512 resnet)")
    m.add_argument("--depths", metavar="D,D,...",
                   help="convolutions (compact) or blocks (resnet) per stage, e.g. 1,2,2,2")
    m.add_argument("--init-from", help="fine-tune from one of our .pt checkpoints or .onnx models")
    m.add_argument("--epochs", type=int, default=60)
    m.add_argument("--batch-size", type=int, default=128)
    m.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    m.add_argument("--lr", type=float, help="peak learning rate (default 0.1 sgd, 0.002 adamw)")
    m.add_argument("--weight-decay", type=float, default=5e-4)
    m.add_argument("--schedule", default="onecycle", choices=["onecycle", "cosine", "constant"])
    m.add_argument("--label-smoothing", type=float, default=0.1)
    m.add_argument("--class-weights", action="store_true", help="weight the loss by class rarity")
    m.add_argument("--patience", type=int, default=0, help="early stopping; 0 = off")
    m.add_argument("--no-augment", action="store_true", help="turn all augmentation off")
    m.add_argument("--augment", metavar="K=V,...",
                   help="change augmentation settings, e.g. erase=0.25,rotate=10 (keys: flip, rotate, "
                   "shift, scale, crop_pad, erase, jitter)")
    m.add_argument("--distill", metavar="TEACHER.onnx",
                   help="learn also from a teacher model's soft targets (knowledge distillation)")
    m.add_argument("--distill-tta", default="multicrop", choices=["none", "flip", "multicrop"],
                   help="teacher views averaged into each soft target (default multicrop)")
    m.add_argument("--distill-weight", type=float, default=0.5,
                   help="share of the loss from the teacher (default 0.5)")
    m.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="validate and export a moving average of the weights, e.g. 0.999; 0 = off")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    r.add_argument("--no-amp", action="store_true", help="no bfloat16 autocast on CUDA")
    r.add_argument("--threads", type=int, help="torch CPU threads")
    r.add_argument("--out", default="runs", help="parent folder of run folders (default runs/)")
    r.add_argument("--name", help="run name (default: the architecture)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    from ..training.augment import AugmentConfig
    from ..training.config import TrainConfig

    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 0.002)
    augment = AugmentConfig(0, 0, 0, 0, 0, 0, 0) if args.no_augment else AugmentConfig()
    if args.augment:
        augment = parse_augment(args.augment, augment)
    return TrainConfig(
        data=args.data, val=args.val, val_fraction=args.val_fraction,
        classes=[c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None,
        balance=args.balance, strict=args.strict, arch=args.arch, model_args=model_args(args),
        init_from=args.init_from,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=lr,
        weight_decay=args.weight_decay, schedule=args.schedule, label_smoothing=args.label_smoothing,
        class_weights=args.class_weights, patience=args.patience, distill=args.distill,
        distill_tta=args.distill_tta, distill_weight=args.distill_weight, ema=args.ema, seed=args.seed,
        device=args.device, amp=not args.no_amp, threads=args.threads, crop_margin=args.crop_margin,
        out=args.out, name=args.name, augment=augment)


def model_args(args: argparse.Namespace) -> dict:
    """--widths/--depths as the architecture's constructor arguments (compact: depths, resnet: blocks)."""
    from ..errors import ConfigError

    out: dict = {}
    for flag, text in (("--widths", args.widths), ("--depths", args.depths)):
        if not text:
            continue
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: give comma-separated whole numbers, e.g. 1,2,2,2") from None
        if not values or min(values) < 1:
            raise ConfigError(f"{flag} {text!r}: every value must be at least 1")
        key = "widths" if flag == "--widths" else ("blocks" if args.arch == "resnet" else "depths")
        out[key] = values
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ConfigError(f"--widths {args.widths} and --depths {args.depths} need the same number of stages")
    if len(out) == 1 and lengths != {4}:
        raise ConfigError("--widths or --depths alone must give 4 stages (the default number); "
                          "pass both to change the number of stages")
    return out


def parse_augment(text: str, base):
    """'erase=0.25,rotate=10' -> a copy of the AugmentConfig `base` with those fields changed."""
    from dataclasses import fields, replace

    from ..errors import ConfigError

    types = {f.name: (int if f.type in (int, "int") else float) for f in fields(base)}
    changes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in types:
            raise ConfigError(f"--augment {item!r}: unknown key; use {', '.join(types)}")
        try:
            changes[key] = types[key](value)
        except ValueError:
            raise ConfigError(f"--augment {item!r}: {value!r} is not a {types[key].__name__}") from None
        if changes[key] < 0:
            raise ConfigError(f"--augment {item!r}: values must be >= 0")
    return replace(base, **changes)


def run(args: argparse.Namespace) -> int:
    try:
        from ..training import loop
    except ImportError as exc:
        raise DependencyError(f"training needs torch ({exc.name} is missing): pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc
    from ..errors import ConfigError

    if args.resume:
        run_dir = loop.resume(args.resume)
    else:
        if not args.data:
            raise ConfigError("train needs DATA (fer2013.csv or a folder) or --resume RUN_DIR")
        command = "emotiscope " + shlex.join(getattr(args, "argv", sys.argv[1:]))
        run_dir = loop.train(_config(args), command=command)
    print(display(run_dir))
    return 0
