"""Ensembles: several trained models in one ONNX file (`emotiscope export A B C -o out.onnx`).

Each member sees the face in its own normalisation and contributes its probabilities at its own
calibration temperature; the file outputs the log of their mean (models.EnsembleNet), so every
verb runs it like any other model. Members must share labels, input size, channels and crop
margin. When every member is a checkpoint of a run that held out the same slice of the same
training data (`--val-fraction`, the same for every --seed), the ensemble is validated on that
slice and its own temperature fitted there; otherwise it is exported without validation metrics
and temperature 1, and says so.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..outputs import display
from ..preprocess import InputSpec, normalize
from . import calibrate
from .duplicates import near_duplicates
from .evaluate import classification_report, duplicate_free, map_labels
from .export import TrainedModel, build_metadata, export_onnx, read_trained
from .models import build_model, count_macs

Member = TrainedModel  # an ensemble's member: a single network of ours


def load_member(path: Path) -> Member:
    """A member from one of our .pt checkpoints (with its run's report.json, when beside it) or
    .onnx models; ModelError for anything else, ConfigError for an ensemble (members are single
    models)."""
    if path.suffix not in (".pt", ".onnx"):
        raise ConfigError(f"{path}: an ensemble member is a .pt checkpoint or an .onnx model of ours")
    member = read_trained(path, "export", need=("model", "arch", "labels", "spec"))
    if member.arch == "ensemble":
        raise ConfigError(f"{path} is an ensemble; pass its members (single models) instead")
    return member


def build_ensemble(members: list[Member], member_tta: list[str] | None = None
                   ) -> tuple[torch.nn.Module, InputSpec, list[str], list[dict]]:
    """(the EnsembleNet with the members' weights, the ensemble's input spec (the first member's),
    labels, the members' model_args records); ConfigError when members do not fit together.
    `member_tta`: each member's views inside the ensemble ("none" or "flip"; default all "none")."""
    if len(members) < 2:
        raise ConfigError("an ensemble needs at least two models")
    member_tta = list(member_tta or ["none"] * len(members))
    if len(member_tta) != len(members) or not set(member_tta) <= {"none", "flip"}:
        raise ConfigError(f"--member-tta takes one of none or flip per member ({len(members)}, in "
                          f"order), e.g. flip,none; got {','.join(member_tta)}")
    specs = [m.spec for m in members if m.spec is not None]
    if len(specs) < len(members):
        raise ConfigError("every ensemble member needs its input contract (size, normalisation); "
                          "export the members again with this version")
    first, spec = members[0], specs[0]
    for m, own in zip(members[1:], specs[1:], strict=True):
        if m.labels != first.labels:
            raise ConfigError(f"{display(m.path)} has labels {', '.join(m.labels)}; "
                              f"{display(first.path)} has {', '.join(first.labels)}: ensemble models "
                              "trained on the same classes")
        if replace(own, mean=0, std=1) != replace(spec, mean=0, std=1):
            raise ConfigError(f"{display(m.path)} takes {own.size}px, {own.channels} channel(s), "
                              f"margin {own.margin:g}; {display(first.path)} takes {spec.size}px, "
                              f"{spec.channels}, margin {spec.margin:g}: they must match")
    records = [{"arch": m.arch, "model_args": m.model_args, "scale": spec.std / own.std,
                "shift": (spec.mean - own.mean) / own.std, "temperature": m.temperature, "tta": tta}
               for m, own, tta in zip(members, specs, member_tta, strict=True)]
    model = build_model("ensemble", len(first.labels), spec.channels, members=records)
    for net, m in zip(model.members, members, strict=True):  # type: ignore[arg-type]
        net.load_state_dict(m.weights)
    return model.eval(), spec, first.labels, records


def shared_holdout(members: list[Member]):
    """(the held-out slice (a FaceSet) that every member's run kept out of training, its source,
    the mask of its faces with a near-duplicate in the training part), or (None, the reason,
    None)."""
    from .config import TrainConfig
    from .prepare import prepare_data

    configs = [m.config for m in members]
    keys = ("data", "val_fraction", "classes", "faces", "group_by", "val")
    if not all(configs) or any({k: c.get(k) for k in keys} != {k: configs[0].get(k) for k in keys}
                               for c in configs):
        return None, "its members are not all checkpoints of runs on the same data and split", None
    cfg = TrainConfig.from_dict(configs[0])
    if not cfg.val_fraction or cfg.val or cfg.group_by:
        return None, "its members' runs did not hold out a --val-fraction slice of the training data", None
    if not Path(cfg.data).exists():
        return None, f"the training data {cfg.data} is not here", None
    quiet = logging.getLogger("emotiscope.training.prepare")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the members' runs already warned about their split
    try:
        train, held_out, source = prepare_data(cfg)
    finally:
        quiet.setLevel(level)
    return held_out, source, near_duplicates(held_out.images, train.images)


def val_split(data: Path):
    """(the val split of `data`, its near-duplicates of the data's train split, its description)."""
    from .data import load_any

    splits = load_any(Path(data))
    if "val" not in splits:
        raise ConfigError(f"--val {data} has no val split (it has {', '.join(splits)}); pass a "
                          "fer2013.csv or a folder with val/<class>/ images")
    fs = splits["val"]
    twin = (near_duplicates(fs.images, splits["train"].images) if "train" in splits
            else np.zeros(len(fs), bool))
    return fs, twin, f"{data} val split"


@torch.no_grad()
def ensemble_logits(model: torch.nn.Module, spec: InputSpec, faces: np.ndarray,
                    batch: int = 512) -> np.ndarray:
    out = [model(normalize(torch.from_numpy(faces[i:i + batch]).float()[:, None], spec.mean, spec.std))
           for i in range(0, len(faces), batch)]
    return torch.cat(out).numpy()


def export_ensemble(paths: list[Path], out: Path, command: str = "", tta: str = "none",
                    member_tta: list[str] | None = None, val: Path | None = None) -> dict:
    """Write the ensemble of `paths` to `out` with its contract; returns {sha256, parity,
    validation, temperature} (validation None where it was not validated).
    `member_tta`: build_ensemble's; `tta`: the views of the whole ensemble every verb classifies.
    Validated and calibrated on the members' shared held-out slice when there is one; otherwise,
    with `val` (data with a val split), validated there but not calibrated (that is data to
    report on, not to fit on)."""
    members = [load_member(Path(p)) for p in paths]
    model, spec, labels, records = build_ensemble(members, member_tta)
    metrics: dict = {"macs": count_macs(model, spec.size, spec.channels)}
    held_out, source, twin = shared_holdout(members)
    temperature, on_val = 1.0, held_out is None and val is not None
    if held_out is None and val is not None:
        print(f"{display(out)}: validated on {display(val)}, not calibrated: {source}", file=sys.stderr)
        held_out, twin, source = val_split(val)
    elif held_out is None:
        print(f"{display(out)}: not validated and not calibrated: {source}", file=sys.stderr)
    if held_out is not None:
        logits = ensemble_logits(model, spec, held_out.images)
        y = map_labels(held_out, tuple(labels))
        report = classification_report(y, logits.argmax(1), labels)
        metrics["validation"] = {k: report[k] for k in ("accuracy", "macro_f1", "per_class")}
        metrics["validation"].update(n=len(y), source=source)
        metrics["validation"]["duplicate_free"] = duplicate_free(y, logits.argmax(1), labels, twin)
        metrics["validation"]["ece"] = calibrate.reliability(np.exp(logits), y)["ece"]
        if not on_val:
            metrics["calibration"] = calibrate.calibration_record(logits, y, source, twin)
            temperature = metrics["calibration"]["temperature"]
    training = {"command": command, "members": [
        {"file": str(m.path), "arch": m.arch, "validation_accuracy": m.accuracy,
         "temperature": m.temperature, "command": m.command, "tta": r["tta"]}
        for m, r in zip(members, records, strict=True)]}
    meta = build_metadata(labels, spec, "ensemble", {"members": records}, training, metrics)
    meta["temperature"], meta["tta"] = temperature, tta
    result = export_onnx(model, Path(out), meta)
    return {**result, "validation": metrics.get("validation"), "temperature": temperature}
