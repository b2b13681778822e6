"""Training configuration: one dataclass; CLI flags map onto its fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError
from ..preprocess import MAX_MARGIN
from .augment import AugmentConfig

# What `--init-from` changes unless the flag is given: a small data set of new faces is fitted
# best by gentle steps from the source's weights (see docs/TRAINING.md and
# benchmarks/bench_finetune.py for the measurements behind these numbers).
FINETUNE_DEFAULTS = {"optimizer": "adamw", "lr": 1e-4, "schedule": "cosine", "epochs": 10}

# The fields `train --resume RUN` may change; the others are fixed by the run's config.json.
RESUMABLE = ("epochs", "patience", "threads", "device", "amp", "quiet", "tensorboard")


@dataclass
class TrainConfig:
    data: str = ""
    val: str | None = None            # a separate CSV/folder for validation
    val_fraction: float | None = None  # hold out this stratified fraction of the training split
    group_by: str | None = None        # regex on file names; its first group is the subject id
    classes: list[str] | None = None
    balance: str | None = None         # "min" or an integer per class
    strict: bool = False
    arch: str = "compact"
    model_args: dict = field(default_factory=dict)
    init_from: str | None = None
    freeze: str | None = None          # "features": train only the classifier head
    backbone_lr_scale: float = 1.0    # the backbone's learning rate as a fraction of the head's
    epochs: int = 60
    batch_size: int = 128
    optimizer: str = "sgd"            # sgd (nesterov momentum) or adamw
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "onecycle"        # onecycle, cosine or constant
    label_smoothing: float = 0.1
    class_weights: bool = False
    patience: int = 0                 # early stopping after this many epochs without gain; 0 = off
    distill: str | None = None        # teachers (.onnx/.pt, comma-separated): soft targets in the loss
    distill_tta: str = "multicrop"    # teacher views averaged for its soft targets
    distill_weight: float = 0.5       # share of the loss from the teacher's soft targets
    ema: float = 0.0                  # per-step decay of a weight average used for val/export; 0 = off
    seed: int = 0
    device: str = "auto"
    amp: bool = True                  # bfloat16 autocast on CUDA and on CPUs with native bf16
    threads: int | None = None
    crop_margin: float = 0.0
    size: int = 48
    out: str = "runs"
    name: str | None = None
    tensorboard: bool = False          # also write TensorBoard logs into the run folder
    quiet: bool = False                # no per-epoch progress on stderr
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> TrainConfig:
        checks = [
            (self.epochs >= 1, f"--epochs {self.epochs} must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1"),
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
            (0 < self.backbone_lr_scale <= 1,
             f"--backbone-lr-scale {self.backbone_lr_scale:g} must be in (0, 1], e.g. 0.1"),
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
            import re

            try:
                pattern = re.compile(self.group_by)
            except re.error as exc:
                raise ConfigError(f"--group-by {self.group_by!r} is not a regular expression "
                                  f"({exc})") from None
            if pattern.groups < 1:
                raise ConfigError(f"--group-by {self.group_by!r} needs a capture group for the subject "
                                  r"id, e.g. '^(\w+?)_'")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["augment"] = AugmentConfig(**data.get("augment", {}))
        return cls(**kwargs)
