"""`emotiscope train`: train a classifier on FER-2013 (CSV or folders) or your own class folders."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..errors import DependencyError
from ..outputs import display


def register(sub) -> None:
    # Flags default to None ("not given"): the defaults live in TrainConfig, and a flag given
    # explicitly overrides --config, the --init-from defaults, or (where allowed) a resumed run.
    p = sub.add_parser("train", help="train an emotion classifier (needs the [train] extra)",
                       description="Train on fer2013.csv, a train/ val/ folder layout or your own "
                       "class folders. Every run writes a new folder under --out.")
    p.add_argument("data", nargs="?", help="fer2013.csv or a folder (train/<class>/*, or <class>/*)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a killed run from its last.pt, or extend it with --epochs N")
    p.add_argument("--config", metavar="CONFIG.json",
                   help="start from a run's config.json; flags given on the command line override it")
    g = p.add_argument_group("data")
    g.add_argument("--val", help="a separate CSV/folder to validate on (default: the data's val split)")
    g.add_argument("--val-fraction", type=float, help="hold out this fraction of the training data")
    g.add_argument("--group-by", metavar="REGEX",
                   help="split train/val by subject: the regex's first group on each file name is "
                   "the subject id, e.g. '^(\\w+?)_' for alice_01.jpg")
    g.add_argument("--classes", help="comma-separated subset, e.g. happy,sad,neutral")
    g.add_argument("--balance", help="'min' (cut every class to the rarest) or N images per class")
    g.add_argument("--strict", action="store_true", default=None,
                   help="fail on unreadable images instead of skipping")
    g.add_argument("--crop-margin", type=float,
                   help="margin per side added to detected face boxes at inference, as a fraction "
                   "of the box (default 0: FER-2013 crops match YuNet boxes, see MODEL_CARD.md)")
    m = p.add_argument_group("model and optimisation")
    m.add_argument("--arch", help="compact (CPU, default) or resnet (GPU)")
    m.add_argument("--widths", metavar="W,W,...",
                   help="channels per stage of the compact/resnet network, e.g. 40,80,160,240 "
                   "(default 24,48,96,144 compact, 64,128,256,512 resnet)")
    m.add_argument("--depths", metavar="D,D,...",
                   help="convolutions (compact) or blocks (resnet) per stage, e.g. 1,2,2,2")
    m.add_argument("--init-from", help="fine-tune from one of our .pt checkpoints or .onnx models "
                   "(then the defaults are adamw, lr 1e-4, cosine, 10 epochs)")
    m.add_argument("--freeze", choices=["features"], help="train only the classifier head")
    m.add_argument("--backbone-lr-scale", type=float, metavar="F",
                   help="the backbone's learning rate as a fraction of the head's, e.g. 0.1")
    m.add_argument("--epochs", type=int, help="default 60 (10 with --init-from)")
    m.add_argument("--batch-size", type=int, help="default 128")
    m.add_argument("--optimizer", choices=["sgd", "adamw"], help="default sgd (adamw with --init-from)")
    m.add_argument("--lr", type=float, help="peak learning rate (default 0.1 sgd, 0.002 adamw, "
                   "1e-4 with --init-from)")
    m.add_argument("--weight-decay", type=float, help="default 5e-4")
    m.add_argument("--schedule", choices=["onecycle", "cosine", "constant"],
                   help="default onecycle (cosine with --init-from)")
    m.add_argument("--label-smoothing", type=float, help="default 0.1")
    m.add_argument("--class-weights", action="store_true", default=None,
                   help="weight the loss by class rarity")
    m.add_argument("--patience", type=int, help="early stopping; 0 = off (default)")
    m.add_argument("--no-augment", action="store_true", help="turn all augmentation off")
    m.add_argument("--augment", metavar="K=V,...",
                   help="change augmentation settings, e.g. erase=0.25,rotate=10 (keys: flip, rotate, "
                   "shift, scale, crop_pad, erase, jitter)")
    m.add_argument("--distill", metavar="TEACHER[,TEACHER...]",
                   help="learn also from teachers' soft targets (knowledge distillation): .onnx "
                   "models or .pt checkpoints of ours, comma-separated; several are averaged")
    m.add_argument("--distill-tta", choices=["none", "flip", "multicrop"],
                   help="teacher views averaged into each soft target (default multicrop)")
    m.add_argument("--distill-weight", type=float, help="share of the loss from the teacher (default 0.5)")
    m.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and export a moving average of the weights, e.g. 0.999; 0 = off")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, help="default 0")
    r.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    r.add_argument("--no-amp", action="store_true", help="no bfloat16 autocast on CUDA")
    r.add_argument("--threads", type=int, help="torch CPU threads")
    r.add_argument("--out", help="parent folder of run folders (default runs/)")
    r.add_argument("--name", help="run name (default: the architecture)")
    r.add_argument("--tensorboard", action="store_true", default=None,
                   help="also write TensorBoard logs (needs the tensorboard package)")
    r.add_argument("--quiet", action="store_true", default=None, help="no progress on stderr")
    p.set_defaults(func=run)


# flags whose value is the TrainConfig field of the same name
PLAIN = ("val", "val_fraction", "group_by", "balance", "strict", "crop_margin", "arch", "init_from",
         "freeze", "backbone_lr_scale", "epochs", "batch_size", "optimizer", "lr", "weight_decay",
         "schedule", "label_smoothing", "class_weights", "patience", "distill", "distill_tta",
         "distill_weight", "ema", "seed", "device", "threads", "out", "name", "tensorboard", "quiet")


def given(args: argparse.Namespace) -> dict:
    """The TrainConfig fields set by flags given on the command line (not --augment)."""
    out = {k: getattr(args, k) for k in PLAIN if getattr(args, k) is not None}
    if args.data:
        out["data"] = args.data
    if args.classes is not None:
        out["classes"] = [c.strip() for c in args.classes.split(",") if c.strip()] or None
    if args.widths or args.depths:
        out["model_args"] = model_args(args)
    if args.no_amp:
        out["amp"] = False
    return out


def _config(args: argparse.Namespace):
    """The effective TrainConfig: --config file (or the defaults), then the --init-from defaults
    for what neither gives, then the flags given."""
    from dataclasses import replace

    from ..training.augment import AugmentConfig
    from ..training.config import FINETUNE_DEFAULTS, TrainConfig

    flags = given(args)
    base = load_config(args.config) if args.config else TrainConfig()
    if flags.get("init_from") and not args.config:
        base = replace(base, **FINETUNE_DEFAULTS)
    if "lr" not in flags and "optimizer" in flags and flags["optimizer"] != base.optimizer:
        flags["lr"] = 0.1 if flags["optimizer"] == "sgd" else 0.002
    cfg = replace(base, **flags)
    if args.no_augment:
        cfg.augment = AugmentConfig(0, 0, 0, 0, 0, 0, 0)
    if args.augment:
        cfg.augment = parse_augment(args.augment, cfg.augment)
    return cfg


def load_config(path: str):
    """A TrainConfig from a run's config.json (one-line ConfigError for anything else)."""
    import json
    from pathlib import Path

    from ..errors import ConfigError
    from ..training.config import TrainConfig

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        unknown = sorted(set(data) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        return TrainConfig.from_dict(data)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"--config {path}: not a run's config.json ({exc}); pass the "
                          "config.json of a run folder") from None


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
    out = replace(base, **changes)
    out.validate()
    return out


def run(args: argparse.Namespace) -> int:
    try:
        from ..training import loop, runs
    except ImportError as exc:
        raise DependencyError(f"training needs torch ({exc.name} is missing): pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc
    from ..errors import ConfigError

    if args.resume:
        changes = given(args)
        if args.config or args.augment or args.no_augment:
            changes["augment" if not args.config else "config"] = True
        run_dir = runs.resume(args.resume, changes)
    else:
        if not args.data and not args.config:
            raise ConfigError("train needs DATA (fer2013.csv or a folder) or --resume RUN_DIR")
        command = "emotiscope " + shlex.join(getattr(args, "argv", sys.argv[1:]))
        run_dir = loop.train(_config(args), command=command)
    print(display(run_dir))
    return 0
