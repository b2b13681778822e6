"""`emotiscope train`: train a classifier on FER-2013 (CSV or folders) or your own class folders.

The flags are generated from TrainConfig's fields (training/config.py: help text and default in
each field's metadata); only DATA, --resume, --config, --widths/--depths and the augmentation
flags are written here, because they do not map onto one field."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from ..errors import ConfigError, DependencyError
from ..outputs import display
from ..training.config import DATA, MODEL, RUN, TrainConfig
from . import _flags


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
    groups = {title: p.add_argument_group(title) for title in (DATA, MODEL, RUN)}
    _flags.add_flags(p, TrainConfig, groups)
    m = groups[MODEL]
    m.add_argument("--widths", metavar="W,W,...",
                   help="channels per stage of the compact/resnet network, e.g. 40,80,160,240 "
                   "(default 24,48,96,144 compact, 64,128,256,512 resnet)")
    m.add_argument("--depths", metavar="D,D,...",
                   help="convolutions (compact) or blocks (resnet) per stage, e.g. 1,2,2,2 "
                   "(default 1,2,2,2 compact, 2,2,2,2 resnet)")
    m.add_argument("--no-augment", action="store_true", help="turn all augmentation off")
    m.add_argument("--augment", metavar="K=V,...",
                   help="change augmentation settings, e.g. erase=0.25,rotate=10 (defaults: "
                   + ", ".join(f"{k}={v:g}" for k, v in vars(TrainConfig().augment).items()) + ")")
    p.set_defaults(func=run)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set by flags given on the command line (not --augment, --widths,
    --depths: they change what --config gives, see _config)."""
    out = _flags.given(args, TrainConfig)
    if args.data:
        out["data"] = args.data
    return out


def _config(args: argparse.Namespace) -> TrainConfig:
    """The effective TrainConfig: --config file (or the defaults), then the --init-from defaults
    for what neither gives, then the flags given."""
    from dataclasses import replace

    from ..training.config import FINETUNE_DEFAULTS, NO_AUGMENT, parse_augment

    flags = given(args)
    base = load_config(args.config) if args.config else TrainConfig()
    if flags.get("init_from", base.init_from) and ("arch" in flags or args.widths or args.depths):
        raise ConfigError("--init-from takes the network (its architecture, widths and depths) from "
                          "its source; drop --arch/--widths/--depths, or train that network from "
                          "scratch without --init-from")
    arch = flags.get("arch", base.arch)
    if arch != base.arch:  # the --config's widths and depths were sized for its own architecture
        base = replace(base, model_args={})
    if args.widths or args.depths:  # they change those of --config, keeping the rest
        flags["model_args"] = model_args(args, arch, base.model_args)
    if flags.get("init_from") and not args.config:
        base = replace(base, **FINETUNE_DEFAULTS)
    if "lr" not in flags and "optimizer" in flags and flags["optimizer"] != base.optimizer:
        flags["lr"] = 0.1 if flags["optimizer"] == "sgd" else 0.002
    cfg = replace(base, **flags)
    if args.no_augment:
        cfg.augment = replace(NO_AUGMENT)
    if args.augment:
        cfg.augment = parse_augment(args.augment, cfg.augment)
    return cfg


def load_config(path: str) -> TrainConfig:
    """A TrainConfig from a run's config.json (one-line ConfigError for anything else)."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        unknown = sorted(set(data) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        return TrainConfig.from_dict(data)
    except ConfigError as exc:  # a value of the wrong type
        raise ConfigError(f"--config {display(path)}: {exc}; fix or remove that key") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"--config {path}: not a run's config.json ({exc}); pass the "
                          "config.json of a run folder") from None


def model_args(args: argparse.Namespace, arch: str, inherited: dict | None = None) -> dict:
    """--widths/--depths as the constructor arguments of `arch` (compact: depths, resnet: blocks),
    on top of `inherited` (those of --config)."""
    out: dict = dict(inherited or {})
    for flag, text in (("--widths", args.widths), ("--depths", args.depths)):
        if not text:
            continue
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: give comma-separated whole numbers, e.g. 1,2,2,2") from None
        if not values or min(values) < 1:
            raise ConfigError(f"{flag} {text!r}: every value must be at least 1")
        key = "widths" if flag == "--widths" else ("blocks" if arch == "resnet" else "depths")
        out[key] = values
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        given = ", ".join(f"{k} {','.join(map(str, v))}" for k, v in out.items())
        raise ConfigError(f"--widths and --depths need the same number of stages ({given}"
                          f"{', with those of --config' if inherited else ''}); give both")
    if len(out) == 1 and lengths != {4}:
        raise ConfigError("--widths or --depths alone must give 4 stages (the default number); "
                          "pass both to change the number of stages")
    return out


def run(args: argparse.Namespace) -> int:
    try:
        from ..training import loop, runs
    except ImportError as exc:
        raise DependencyError(f"training needs torch ({exc.name} is missing): pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc

    if args.resume:
        changes = given(args)
        if args.widths or args.depths:
            changes["model_args"] = True
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
