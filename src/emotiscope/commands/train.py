"""`emotiscope train`: train a classifier on FER-2013 (CSV or folders) or your own class folders."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..errors import DependencyError


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
    return TrainConfig(
        data=args.data, val=args.val, val_fraction=args.val_fraction,
        classes=[c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None,
        balance=args.balance, strict=args.strict, arch=args.arch, init_from=args.init_from,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=lr,
        weight_decay=args.weight_decay, schedule=args.schedule, label_smoothing=args.label_smoothing,
        class_weights=args.class_weights, patience=args.patience, seed=args.seed,
        device=args.device, amp=not args.no_amp, threads=args.threads, crop_margin=args.crop_margin,
        out=args.out, name=args.name, augment=augment)


def run(args: argparse.Namespace) -> int:
    try:
        from ..training import loop
    except ImportError as exc:
        raise DependencyError(f"training needs torch ({exc.name} is missing): pip install torch==2.13.0 "
                              "'emotiscope[train]'") from exc
    from ..errors import ConfigError

    if args.resume:
        run_dir = loop.resume(args.resume)
    else:
        if not args.data:
            raise ConfigError("train needs DATA (fer2013.csv or a folder) or --resume RUN_DIR")
        command = "emotiscope " + shlex.join(getattr(args, "argv", sys.argv[1:]))
        run_dir = loop.train(_config(args), command=command)
    print(run_dir)
    return 0
