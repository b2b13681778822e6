"""Run set-up: which data to train and validate on, the initial model, the run folder."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, InputError
from ..outputs import check_writable_folder, display
from .config import TrainConfig
from .data import load_any
from .distill import teacher_paths
from .faceset import FaceSet, balance, select_classes, split_fraction
from .models import build_model
from .photos import face_cropper

if TYPE_CHECKING:
    from .export import TrainedModel

log = logging.getLogger(__name__)


SMALL_VAL = 50  # fewer validation faces than this: accuracy moves in steps of 2 % or more

SPLIT_SEED = 0  # the held-out slice of --val-fraction is the same for every --seed


def prepare_data(cfg: TrainConfig) -> tuple[FaceSet, FaceSet, str]:
    """(train, val, a description of the val source) after class selection and balancing."""
    splits = load_data(Path(cfg.data), cfg)
    train = splits.get("train") or splits.get("all")
    if train is None:
        raise ConfigError(f"{cfg.data} has no training split (train/ folder or Training rows)")
    if cfg.val:
        other = load_data(Path(cfg.val), cfg)  # a CSV without Usage loads as "train": its only split
        val = other.get("val") or other.get("all") or other.get("test") or other.get("train")
        source = f"{cfg.val}"
    elif cfg.group_by and "val" not in splits:
        fraction = cfg.val_fraction or 0.2
        train, val = split_groups(train, cfg.group_by, fraction, cfg.seed)
        source = f"subjects holding ~{fraction:.0%} of {cfg.data} held out (--group-by)"
    elif cfg.val_fraction:
        # SPLIT_SEED, not --seed: runs that differ only in seed hold out the same faces, so they
        # can be compared and ensembled on them
        train, val = split_fraction(train, cfg.val_fraction, SPLIT_SEED)
        source = f"{cfg.val_fraction:.0%} of {cfg.data} held out"
    elif "val" in splits:
        val, source = splits["val"], f"{cfg.data} val split"
    else:
        train, val = split_fraction(train, 0.1, SPLIT_SEED)
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
    _check_enough(train, val, cfg, source if "held out" in source else "")
    warn_about_validation(cfg, train, val, random_split="held out" in source and not cfg.group_by)
    return train, val, source


def _check_enough(train: FaceSet, val: FaceSet, cfg: TrainConfig, held_out: str = "") -> None:
    """ConfigError, saying which, when training has fewer than 2 classes or too few images.
    `held_out`: how the validation faces were split off the training data, if they were."""
    classes = len(set(train.labels.tolist()))
    if classes < 2:
        went = f"; {len(val)} image(s) went to validation: {held_out}" if held_out else ""
        raise ConfigError(f"only {classes} class(es) with training images ({len(train)} image(s))"
                          f"{went}; need at least 2 classes with images: add images"
                          + (", or validate on other data with --val" if held_out else ""))
    if len(train) < cfg.batch_size // 4:
        raise ConfigError(f"only {len(train)} training images ({len(val)} more held out for "
                          f"validation); need at least {cfg.batch_size // 4}, a quarter of "
                          f"--batch-size {cfg.batch_size}: add images or lower --batch-size")


def load_data(path: Path, cfg: TrainConfig) -> dict[str, FaceSet]:
    """load_any, with the faces of photos detected and cropped as inference does (--faces)."""
    cropper = face_cropper(path, cfg.faces, cfg.crop_margin)
    if cropper:
        log.info("detecting faces in the photos under %s (--faces %s)", display(path), cfg.faces)
    return load_any(path, cfg.size, cfg.strict, cropper=cropper, wanted=cfg.classes)


def subjects(fs: FaceSet, pattern: str) -> np.ndarray:
    """The subject id of every face: the first group of `pattern` searched in its file name."""
    if not len(fs.files):
        raise ConfigError("--group-by needs image files to read subject ids from; this data (a CSV) "
                          "has no file names")
    regex = re.compile(pattern)
    ids = []
    for f in fs.files:
        name = Path(str(f)).name
        match = regex.search(name)
        if not match or match.group(1) is None:
            raise ConfigError(f"--group-by '{pattern}' does not match the file name '{name}' ({f}); every "
                              r"file name must contain the subject id, e.g. '^(\w+?)_' for alice_01.jpg")
        ids.append(match.group(1))
    return np.array(ids)


def split_groups(fs: FaceSet, pattern: str, fraction: float, seed: int = 0) -> tuple[FaceSet, FaceSet]:
    """(train, val) with no subject in both: whole subjects (seeded order) go to val until it
    holds about `fraction` of the faces."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--val-fraction {fraction} must be between 0 and 1 (e.g. 0.2)")
    ids = subjects(fs, pattern)
    names, counts = np.unique(ids, return_counts=True)
    if len(names) < 2:
        raise ConfigError(f"--group-by {pattern!r} finds {len(names)} subject ({names[0]}); a "
                          "subject-wise split needs at least 2")
    order = np.random.default_rng(seed).permutation(len(names))
    target, taken, held = fraction * len(fs), 0, []
    for k in order[:-1]:  # at least one subject stays for training
        if taken >= target:
            break
        held.append(names[k])
        taken += counts[k]
    mask = np.isin(ids, held)
    return fs.subset(~mask, skipped=[]), fs.subset(mask, skipped=[])


def warn_about_validation(cfg: TrainConfig, train: FaceSet, val: FaceSet, random_split: bool) -> None:
    """Warn when the validation accuracy will not mean much: few faces, subjects seen in
    training, or a random split of photo folders (which may hold the same people)."""
    if len(val) < SMALL_VAL:
        log.warning("only %d validation faces: accuracy moves in steps of %.0f %%; add more, ideally "
                    "of people not in the training data", len(val), 100 / max(len(val), 1))
    if cfg.group_by:
        seen = set(subjects(train, cfg.group_by))
        shared = sorted(seen & set(subjects(val, cfg.group_by))) if len(val.files) else []
        if shared:
            log.warning("%d subject(s) are in both training and validation data (e.g. %s): "
                        "validation measures memory of those faces, not generalisation",
                        len(shared), ", ".join(shared[:3]))
    elif random_split and len(train.files):
        log.warning("validation is a random split of %s: photos of one person may land on both "
                    "sides; pass --group-by REGEX (subject id in the file name) for a subject-wise "
                    "split", cfg.data)


HEAD = ("classifier.weight", "classifier.bias")  # the output layer of every architecture


def load_init(path: Path) -> TrainedModel:
    """The single network in one of our .pt checkpoints or .onnx models (an export.TrainedModel),
    for --init-from."""
    from .checkpoint import folder_given
    from .export import read_trained

    if path.is_dir():
        raise folder_given(f"--init-from {display(path)}", path)
    if not path.is_file():
        raise ConfigError(f"--init-from {path} does not exist")
    source = read_trained(path, "--init-from")
    if source.arch == "ensemble":
        raise ConfigError(f"--init-from {path} is an ensemble; fine-tune one of its members "
                          "(`emotiscope info --model` lists them)")
    return source


def build_initial_model(cfg: TrainConfig, classes):
    """A fresh model, or one initialised from --init-from. The classifier head is matched by label
    name: the output row of every class the source knows is copied to that class's new position,
    classes it does not know get fresh rows. Returns (model, model_args, the source as read, an
    export.TrainedModel without its weights, which are now in the model, or None: a fine-tuned
    model keeps its source's normalisation)."""
    classes = list(classes)
    if not cfg.init_from:
        return build_model(cfg.arch, len(classes), 1, **cfg.model_args), dict(cfg.model_args), None
    source = load_init(Path(cfg.init_from))
    args, weights = source.model_args, source.weights
    cfg.arch, cfg.model_args = source.arch, dict(args)  # resume rebuilds the model from cfg
    model = build_model(source.arch, len(classes), 1, **args)
    own = model.state_dict()
    usable = {k: v for k, v in weights.items()
              if k in own and k not in HEAD and own[k].shape == v.shape}
    kept = map_head(own, weights, source.labels, classes)
    model.load_state_dict({**usable, **{k: own[k] for k in HEAD if k in own}}, strict=False)
    fresh = sorted(k for k in set(own) - set(usable) - set(HEAD)
                   if not k.endswith("num_batches_tracked"))  # a counter, not weights
    log.warning("initialised from %s: %d tensors loaded, %d fresh%s; head rows copied for %s%s",
                cfg.init_from, len(usable), len(fresh), f" ({', '.join(fresh[:4])})" if fresh else "",
                ", ".join(kept) or "no class",
                f", fresh for {', '.join(c for c in classes if c not in kept)}"
                if len(kept) < len(classes) else "")
    return model, args, replace(source, weights={})  # the Trainer keeps it for the whole run


KNEW_MARGIN = 0.05  # accuracy above the source's own record that says it learnt the faces


def init_knew_validation(source: TrainedModel, model, val_set: FaceSet, spec,
                         limit: int = 2000) -> str | None:
    """A warning when the --init-from model (`source` as load_init read it, its weights already in
    `model`) is KNEW_MARGIN or more above its own recorded validation accuracy on this run's
    validation faces (the first `limit`): it has most likely trained on them (a --val-fraction
    slice of the data it learnt from), so the best epoch would be chosen early and its accuracy
    would flatter it. None otherwise."""
    import torch

    from ..preprocess import normalize

    recorded = source.accuracy
    if recorded is None or len(val_set) < 100:
        return None
    model.eval()
    with torch.no_grad():
        x = normalize(torch.from_numpy(val_set.images[:limit]).float()[:, None], spec.mean, spec.std)
        right = model(x).argmax(1).numpy() == val_set.labels[:limit]
    accuracy = float(right.mean())
    if accuracy < recorded + KNEW_MARGIN:
        return None
    return (f"--init-from {display(source.path)} is right on {accuracy:.1%} of this run's validation "
            f"faces against {recorded:.1%} on its own: it has probably trained on them, so the best "
            "epoch will be chosen early and flatter the run; validate on faces it never saw (--val) "
            "or use last.pt")


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


def absolute_paths(cfg: TrainConfig) -> None:
    """Make a new run's input paths (data, val, init_from, distill) absolute, so the config it
    records resumes from any folder."""
    for key in (k for k in ("data", "val", "init_from") if getattr(cfg, k)):
        setattr(cfg, key, os.path.abspath(getattr(cfg, key)))
    if cfg.distill:
        cfg.distill = ",".join(os.path.abspath(p) for p in teacher_paths(cfg.distill))


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
