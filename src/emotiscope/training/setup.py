"""Run set-up: which data to train and validate on, the initial model, the run folder."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from ..errors import ConfigError, InputError, ModelError
from ..outputs import check_writable_folder, display
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .data import FaceSet, balance, load_any, select_classes, split_fraction
from .models import build_model

log = logging.getLogger(__name__)


def prepare_data(cfg: TrainConfig) -> tuple[FaceSet, FaceSet, str]:
    """(train, val, a description of the val source) after class selection and balancing."""
    splits = load_any(Path(cfg.data), cfg.size, cfg.strict)
    train = splits.get("train") or splits.get("all")
    if train is None:
        raise ConfigError(f"{cfg.data} has no training split (train/ folder or Training rows)")
    if cfg.val:
        other = load_any(Path(cfg.val), cfg.size, cfg.strict)
        val = other.get("val") or other.get("all") or other.get("test")
        source = f"{cfg.val}"
    elif cfg.val_fraction:
        train, val = split_fraction(train, cfg.val_fraction, cfg.seed)
        source = f"{cfg.val_fraction:.0%} of {cfg.data} held out"
    elif "val" in splits:
        val, source = splits["val"], f"{cfg.data} val split"
    else:
        train, val = split_fraction(train, 0.1, cfg.seed)
        source = f"10% of {cfg.data} held out (no val split found)"
    if val is None or not len(val):
        raise ConfigError(f"validation source {cfg.val or cfg.data} has no images")
    if tuple(val.classes) != tuple(train.classes) and not cfg.classes:
        raise ConfigError(f"validation classes {val.classes} differ from training classes "
                          f"{train.classes}; pass --classes to choose common ones")
    if cfg.classes:
        train, val = select_classes(train, cfg.classes), select_classes(val, cfg.classes)
    if cfg.balance:
        train = balance(train, cfg.balance, cfg.seed)
    if len(train) < cfg.batch_size // 4 or len(set(train.labels.tolist())) < 2:
        raise ConfigError(f"only {len(train)} training images in {len(set(train.labels.tolist()))} "
                          "class(es); need at least 2 classes with images")
    return train, val, source


HEAD = ("classifier.weight", "classifier.bias")  # the output layer of every architecture


def load_init(path: Path) -> tuple[str, dict, dict, dict | None, list[str]]:
    """(arch, model_args, state_dict, input spec dict, labels) from one of our .pt checkpoints or
    .onnx models."""
    if not path.is_file():
        raise ConfigError(f"--init-from {path} does not exist")
    if path.suffix == ".onnx":
        from .export import onnx_state_dict

        weights, meta = onnx_state_dict(path)
        if "arch" not in meta:
            raise ModelError(f"--init-from {path} has no 'arch' in its metadata; pass a model "
                             "exported by `emotiscope train` or `emotiscope export`")
        return (meta["arch"], meta.get("model_args", {}), weights, meta.get("input"),
                list(meta.get("labels", [])))
    ckpt = load_checkpoint(path, ("model", "arch"), "--init-from")
    return (ckpt["arch"], ckpt.get("model_args", {}), ckpt["model"], ckpt.get("spec"),
            list(ckpt.get("labels", [])))


def build_initial_model(cfg: TrainConfig, classes):
    """A fresh model, or one initialised from --init-from. The classifier head is matched by label
    name: the output row of every class the source knows is copied to that class's new position,
    classes it does not know get fresh rows. Returns (model, model_args, the source's input spec
    dict or None: a fine-tuned model keeps its source's normalisation)."""
    classes = list(classes)
    if not cfg.init_from:
        return build_model(cfg.arch, len(classes), 1, **cfg.model_args), dict(cfg.model_args), None
    arch, args, weights, source_spec, source_labels = load_init(Path(cfg.init_from))
    cfg.arch, cfg.model_args = arch, dict(args)  # resume rebuilds the model from cfg
    model = build_model(arch, len(classes), 1, **args)
    own = model.state_dict()
    usable = {k: v for k, v in weights.items()
              if k in own and k not in HEAD and own[k].shape == v.shape}
    kept = map_head(own, weights, source_labels, classes)
    model.load_state_dict({**usable, **{k: own[k] for k in HEAD if k in own}}, strict=False)
    fresh = sorted(set(own) - set(usable) - set(HEAD))
    log.warning("initialised from %s: %d tensors loaded, %d fresh%s; head rows copied for %s%s",
                cfg.init_from, len(usable), len(fresh), f" ({', '.join(fresh[:4])})" if fresh else "",
                ", ".join(kept) or "no class",
                f", fresh for {', '.join(c for c in classes if c not in kept)}"
                if len(kept) < len(classes) else "")
    return model, args, source_spec


def map_head(own: dict, weights: dict, source_labels: list[str], classes: list[str]) -> list[str]:
    """Copy the source's classifier rows into `own` (in place) by label name; returns the classes
    whose rows were copied. A source without labels, or with a head of another width, gives none."""
    if not all(k in own and k in weights for k in HEAD):
        return []
    w, b = weights[HEAD[0]], weights[HEAD[1]]
    if w.shape[1:] != own[HEAD[0]].shape[1:] or len(source_labels) != w.shape[0]:
        return []
    kept = []
    for i, name in enumerate(classes):
        if name in source_labels:
            j = source_labels.index(name)
            own[HEAD[0]][i], own[HEAD[1]][i] = w[j], b[j]
            kept.append(name)
    return kept


def new_run_dir(out: Path, name: str) -> Path:
    """A new folder out/<date-time>-<name>[-k]; never an existing one."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    check_writable_folder(out, "--out")
    for k in range(1, 1000):
        path = out / (f"{stamp}-{name}" if k == 1 else f"{stamp}-{name}-{k}")
        try:
            out.mkdir(parents=True, exist_ok=True)
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(f"--out {display(out)}: cannot create a run folder there "
                             f"({exc.strerror or exc}); choose another folder") from None
    raise ConfigError(f"cannot create a new run folder in {out}")
