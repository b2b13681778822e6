"""Training configuration: one dataclass. Each field carries its flag's help text in its metadata,
and `emotiscope train` generates its flags from them (commands/_flags.py), so a setting, its
default and its flag are written once. No torch here: `train --help` reads this without it."""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from .configtypes import check_types

# What `--init-from` changes unless the flag is given: a small data set of new faces is fitted
# best by gentle steps from the source's weights (see docs/TRAINING.md and
# benchmarks/bench_finetune.py for the measurements behind these numbers).
FINETUNE_DEFAULTS: dict[str, Any] = {"optimizer": "adamw", "lr": 1e-4, "schedule": "cosine", "epochs": 10}

# The fields `train --resume RUN` may change; the others are fixed by the run's config.json.
RESUMABLE = ("epochs", "patience", "threads", "device", "amp", "quiet", "tensorboard")

DATA, MODEL, RUN = "data", "model and optimisation", "run"

# `--faces` of train and evaluate: what the images of class folders are (training/photos.py).
FACES = ("auto", "crops", "detect")
FACES_HELP = "images are face crops, or photos to detect faces in (auto: by image size)"


def option(default: Any = MISSING, help: str = "", *, group: str = RUN, flag: str | None = None,
           factory: Any = MISSING, generate: bool = True, **argparse_kwargs) -> Any:
    """A dataclass field with its command-line flag described in its metadata: `help`, the flag
    (default --field-name), its argparse group, whether the flag is generated from the field
    (False: the command adds it by hand) and extra argparse keywords (metavar, choices, and
    `default_text` to say the default in words)."""
    meta = {"help": help, "group": group, "flag": flag, "generate": generate, **argparse_kwargs}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class AugmentConfig:
    """flip: probability; rotate: max degrees; shift: max fraction of the side; scale: max +-fraction;
    crop_pad: random-crop padding in pixels; erase: probability of one random-erasing box;
    jitter: max +-fraction of brightness and contrast change. Real-photo degradations, each a
    probability per face (off by default): blur: a Gaussian blur (sigma 0.4-1.6 px, a soft or
    out-of-focus face); lowres: down-sampled to 35-80 % and back (a small face in a large photo);
    dark: low light (gamma 1.5-3 darkening plus sensor noise); jpeg: a JPEG round trip at quality
    15-75 (a compressed photo or video frame); smooth: edge-preserving smoothing (bilateral: skin
    texture gone, edges kept, as noise reduction or a clean downscale leaves a face); noise: sensor
    noise of sigma 2-10 grey levels at normal light."""

    flip: float = 0.5
    rotate: float = 15.0
    shift: float = 0.1
    scale: float = 0.15
    crop_pad: int = 4
    erase: float = 0.5
    jitter: float = 0.3
    blur: float = 0.0
    lowres: float = 0.0
    dark: float = 0.0
    jpeg: float = 0.0
    smooth: float = 0.0
    noise: float = 0.0

    def validate(self) -> None:
        """A one-line ConfigError for a value outside its range (e.g. flip=2, rotate=400)."""
        limits = {"flip": 1, "rotate": 180, "shift": 0.5, "scale": 0.9, "crop_pad": 24, "erase": 1,
                  "jitter": 1, "blur": 1, "lowres": 1, "dark": 1, "jpeg": 1,
                  "smooth": 1, "noise": 1}
        for key, top in limits.items():
            value = getattr(self, key)
            if not 0 <= value <= top:
                raise ConfigError(f"--augment {key}={value:g} is out of range; use 0 to {top:g}")


NO_AUGMENT = AugmentConfig(0, 0, 0, 0, 0, 0, 0)


def parse_augment(text: str, base: AugmentConfig) -> AugmentConfig:
    """'erase=0.25,rotate=10' -> a copy of the AugmentConfig `base` with those fields changed."""
    from dataclasses import replace

    types = {f.name: (int if f.type in (int, "int") else float) for f in fields(base)}
    changes: dict[str, Any] = {}
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


@dataclass
class TrainConfig:
    data: str = option("", "fer2013.csv or a folder (train/<class>/*, or <class>/*)", group=DATA,
                       flag="DATA", generate=False)
    val: str | None = option(None, "a separate CSV/folder to validate on", group=DATA,
                             default_text="the data's val split", metavar="DATA")
    val_fraction: float | None = option(None, "hold out this fraction of the training data", group=DATA)
    group_by: str | None = option(None, "split train/val by subject: the regex's first group on each "
                                  "file name is the subject id, e.g. '^(\\w+?)_' for alice_01.jpg",
                                  group=DATA, metavar="REGEX")
    classes: list[str] | None = option(None, "comma-separated subset, e.g. happy,sad,neutral",
                                       group=DATA, default_text="all classes of the data")
    balance: str | None = option(None, "'min' (cut every class to the rarest) or at most N images per class",
                                 group=DATA)
    strict: bool = option(False, "fail on unreadable images instead of skipping", group=DATA)
    faces: str = option("auto", FACES_HELP + "; in photos the largest face is cropped as inference "
                        "crops it (--crop-margin)", group=DATA, choices=list(FACES))
    arch: str = option("compact", "compact (CPU) or resnet (GPU)", group=MODEL)
    model_args: dict = option(help="channels (--widths) and convolutions or blocks (--depths) per stage",
                              factory=dict, group=MODEL, flag="--widths/--depths", generate=False)
    init_from: str | None = option(None, "fine-tune from one of our .pt checkpoints or .onnx models "
                                   "(then the defaults are adamw, lr 1e-4, cosine, 10 epochs)",
                                   group=MODEL)
    freeze: str | None = option(None, "train only the classifier head", group=MODEL, choices=["features"])
    backbone_lr_scale: float = option(1.0, "the backbone's learning rate as a fraction of the head's, "
                                      "e.g. 0.1", group=MODEL, metavar="F")
    epochs: int = option(60, "epochs to train", group=MODEL, default_text="60, 10 with --init-from")
    batch_size: int = option(128, "faces per optimisation step", group=MODEL)
    optimizer: str = option("sgd", "sgd (nesterov momentum) or adamw", group=MODEL,
                            choices=["sgd", "adamw"], default_text="sgd, adamw with --init-from")
    lr: float = option(0.1, "peak learning rate", group=MODEL,
                       default_text="0.1 sgd, 0.002 adamw, 1e-4 with --init-from")
    weight_decay: float = option(5e-4, "weight decay", group=MODEL)
    schedule: str = option("onecycle", "learning-rate schedule", group=MODEL,
                           choices=["onecycle", "cosine", "constant"],
                           default_text="onecycle, cosine with --init-from")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy", group=MODEL)
    class_weights: bool = option(False, "weight the loss by class rarity", group=MODEL)
    patience: int = option(0, "early stopping after this many epochs without gain; 0 = off",
                           group=MODEL)
    distill: str | None = option(None, "learn also from teachers' soft targets (knowledge "
                                 "distillation): .onnx models or .pt checkpoints of ours, "
                                 "comma-separated; several are averaged", group=MODEL,
                                 metavar="TEACHER[,TEACHER...]")
    distill_tta: str = option("multicrop", "teacher views averaged into each soft target, computed "
                              "once before training; augmented: the teacher judges the student's "
                              "own augmented faces every step (a consistent teacher; a teacher "
                              "forward pass per step)", group=MODEL,
                              choices=["none", "flip", "multicrop", "augmented"])
    distill_weight: float = option(0.5, "share of the loss from the teacher's soft targets", group=MODEL)
    ema: float = option(0.0, "validate and export a moving average of the weights, e.g. 0.999; "
                        "0 = off", group=MODEL, metavar="DECAY")
    seed: int = option(0, "random seed of the initial weights, augmentation and --group-by split "
                       "(the --val-fraction slice is the same for every seed)")
    device: str = option("auto", "auto, cpu, cuda, cuda:1 ...")
    amp: bool = option(True, "no bfloat16 autocast (default: on with CUDA and CPUs with native bf16)",
                       flag="--no-amp")
    threads: int | None = option(None, "torch CPU threads (of each process with --nproc)",
                                 default_text="torch's choice; with --nproc the cores shared out")
    nproc: int = option(1, "train data-parallel in N processes on this machine (torch DDP: gloo on "
                        "CPU, NCCL on CUDA); a resumed run keeps its N. Across machines use "
                        "torchrun (docs/BATCH.md)", metavar="N")
    crop_margin: float = option(0.0, "margin per side added to detected face boxes at inference, as a "
                                "fraction of the box (FER-2013 crops match YuNet boxes with 0, see "
                                "MODEL_CARD.md)", group=DATA, metavar="F")
    size: int = option(48, "side of the model's square input in pixels", generate=False)
    out: str = option("runs", "parent folder of run folders")
    name: str | None = option(None, "run name", default_text="the architecture")
    tensorboard: bool = option(False, "also write TensorBoard logs into the run folder (needs the "
                               "tensorboard package)")
    quiet: bool = option(False, "no progress on stderr")
    augment: AugmentConfig = option(help="augmentation settings", factory=AugmentConfig, group=MODEL,
                                    generate=False)

    def validate(self, new_run: bool = True) -> TrainConfig:
        """ConfigError for the first setting out of range; new_run False (--resume) leaves out
        the refusals of settings that runs trained before them may hold (--freeze features
        without --init-from or with --backbone-lr-scale): such a run resumes as it started."""
        from ..preprocess import MAX_MARGIN

        checks = [
            (self.epochs >= 1, f"--epochs {self.epochs} must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1"),
            (self.nproc >= 1, f"--nproc {self.nproc} must be at least 1"),
            (self.batch_size >= self.nproc, f"--batch-size {self.batch_size} must be at least "
             f"--nproc {self.nproc}: each process takes its share of every batch"),
            (self.lr > 0, f"--lr {self.lr} must be positive"),
            (self.optimizer in ("sgd", "adamw"), f"--optimizer {self.optimizer!r}: use sgd or adamw"),
            (self.schedule in ("onecycle", "cosine", "constant"),
             f"--schedule {self.schedule!r}: use onecycle, cosine or constant"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing {self.label_smoothing} must be in [0, 1)"),
            (0 <= self.crop_margin <= MAX_MARGIN,
             f"--crop-margin {self.crop_margin} must be between 0 and {MAX_MARGIN}"),
            (self.patience >= 0, f"--patience {self.patience} must be >= 0"),
            (0 <= self.distill_weight <= 1, f"--distill-weight {self.distill_weight} must be in [0, 1]"),
            (0 <= self.ema < 1, f"--ema {self.ema} must be in [0, 1), e.g. 0.999"),
            (self.freeze in (None, "features"), f"--freeze {self.freeze!r}: use features"),
            (self.faces in FACES, f"--faces {self.faces!r}: use one of {', '.join(FACES)}"),
            (0 < self.backbone_lr_scale <= 1,
             f"--backbone-lr-scale {self.backbone_lr_scale:g} must be in (0, 1], e.g. 0.1"),
            (not new_run or not self.freeze or bool(self.init_from), f"--freeze {self.freeze} keeps the "
             "backbone as it starts, random without --init-from; pass --init-from MODEL (.pt or .onnx) "
             "or drop --freeze"),
            (not set(self.name or "") & set("/\\"),
             f"--name {self.name!r} names the run's folder inside --out; drop the / (--out is the place)"),
            (not new_run or not (self.freeze and self.backbone_lr_scale != 1),
             f"--freeze {self.freeze} keeps the backbone still, so --backbone-lr-scale "
             f"{self.backbone_lr_scale:g} would do nothing; pass only one of them"),
            (not (self.val and self.val_fraction),
             "--val and --val-fraction both choose the validation data; pass only one"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.validate_group_by()
        self.augment.validate()
        return self

    def validate_group_by(self) -> None:
        if self.group_by:
            try:
                pattern = re.compile(self.group_by)
            except re.error as exc:
                raise ConfigError(f"--group-by {self.group_by!r} is not a regular expression "
                                  f"({exc})") from None
            if pattern.groups < 1:
                raise ConfigError(f"--group-by {self.group_by!r} needs a capture group for the subject "
                                  r"id, e.g. '^(\w+?)_'")

    def stops_early(self, epoch: int, best_epoch: int, since: int = 0) -> bool:
        """--patience: no gain for `patience` epochs after the best epoch, or after `since` when
        later (the epoch an extension, `train --resume RUN --epochs N`, started from)."""
        return bool(self.patience and epoch - max(best_epoch, since) >= self.patience)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A TrainConfig from a config.json's object; a value of the wrong JSON type is a one-line
        ConfigError ("epochs must be an integer, got 'x'"), unknown keys are left out."""
        if isinstance(data.get("classes"), str):  # "happy,sad", as the flag takes them
            import argparse

            from ..options import comma_list

            try:
                data = {**data, "classes": comma_list(data["classes"])}
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"classes {exc}") from None
        check_types(cls, data)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["augment"] = AugmentConfig(**data.get("augment", {}))
        return cls(**kwargs)


def flag_name(name: str) -> str:
    """The command-line flag of a TrainConfig field (for messages)."""
    known = TrainConfig.__dataclass_fields__.get(name)
    return (known and known.metadata.get("flag")) or "--" + name.replace("_", "-")
