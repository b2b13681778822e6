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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..outputs import display
from ..preprocess import InputSpec, normalize
from . import calibrate
from .evaluate import classification_report, map_labels
from .export import build_metadata, checkpoint_metrics, export_onnx, onnx_state_dict, read_report
from .models import build_model, count_macs


@dataclass
class Member:
    path: Path
    arch: str
    model_args: dict
    labels: list[str]
    spec: InputSpec
    weights: dict
    temperature: float = 1.0
    config: dict = field(default_factory=dict)  # the run's TrainConfig (checkpoints only)
    accuracy: float | None = None  # its own validation accuracy, as recorded
    command: str = ""


def load_member(path: Path) -> Member:
    """A member from one of our .pt checkpoints (with its run's report.json, when beside it) or
    .onnx models; ConfigError for anything else, or for an ensemble (members are single models)."""
    from .checkpoint import load_checkpoint

    if path.suffix == ".onnx":
        weights, meta = onnx_state_dict(path)
        arch, args, labels = meta.get("arch"), meta.get("model_args", {}), meta.get("labels", [])
        spec, temperature = InputSpec.from_dict(meta.get("input", {})), float(meta.get("temperature", 1.0))
        accuracy = (meta.get("metrics") or {}).get("validation", {}).get("accuracy")
        config: dict = {}
        command = (meta.get("training") or {}).get("command", "")
    elif path.suffix == ".pt":
        ckpt = load_checkpoint(path)
        metrics, t = checkpoint_metrics(ckpt, read_report(path.parent / "report.json"))
        arch, args, labels, weights = ckpt["arch"], ckpt.get("model_args", {}), ckpt["labels"], ckpt["model"]
        spec, temperature, config = InputSpec.from_dict(ckpt["spec"]), float(t or 1.0), ckpt.get("config", {})
        accuracy, command = metrics["validation"].get("accuracy"), ckpt.get("command", "")
    else:
        raise ConfigError(f"{path}: an ensemble member is a .pt checkpoint or an .onnx model of ours")
    if arch in (None, "ensemble"):
        raise ConfigError(f"{path} is {'an ensemble' if arch else 'not a model of ours'}; "
                          "pass its members (single models) instead")
    return Member(path, arch, dict(args), list(labels), spec, weights, temperature, config, accuracy, command)


def build_ensemble(members: list[Member]) -> tuple[torch.nn.Module, InputSpec, list[str], list[dict]]:
    """(the EnsembleNet with the members' weights, the ensemble's input spec (the first member's),
    labels, the members' model_args records); ConfigError when members do not fit together."""
    if len(members) < 2:
        raise ConfigError("an ensemble needs at least two models")
    first = members[0]
    for m in members[1:]:
        if m.labels != first.labels:
            raise ConfigError(f"{display(m.path)} has labels {', '.join(m.labels)}; "
                              f"{display(first.path)} has {', '.join(first.labels)}: ensemble models "
                              "trained on the same classes")
        if replace(m.spec, mean=0, std=1) != replace(first.spec, mean=0, std=1):
            raise ConfigError(f"{display(m.path)} takes {m.spec.size}px, {m.spec.channels} channel(s), "
                              f"margin {m.spec.margin:g}; {display(first.path)} takes {first.spec.size}px, "
                              f"{first.spec.channels}, margin {first.spec.margin:g}: they must match")
    spec = first.spec
    records = [{"arch": m.arch, "model_args": m.model_args, "scale": spec.std / m.spec.std,
                "shift": (spec.mean - m.spec.mean) / m.spec.std, "temperature": m.temperature}
               for m in members]
    model = build_model("ensemble", len(first.labels), spec.channels, members=records)
    for net, m in zip(model.members, members, strict=True):  # type: ignore[arg-type]
        net.load_state_dict(m.weights)
    return model.eval(), spec, first.labels, records


def shared_holdout(members: list[Member]):
    """The held-out slice (a FaceSet) that every member's run kept out of training, or None with
    the reason."""
    from .config import TrainConfig
    from .prepare import prepare_data

    configs = [m.config for m in members]
    keys = ("data", "val_fraction", "classes", "faces", "group_by", "val")
    if not all(configs) or any({k: c.get(k) for k in keys} != {k: configs[0].get(k) for k in keys}
                               for c in configs):
        return None, "its members are not all checkpoints of runs on the same data and split"
    cfg = TrainConfig.from_dict(configs[0])
    if not cfg.val_fraction or cfg.val or cfg.group_by:
        return None, "its members' runs did not hold out a --val-fraction slice of the training data"
    if not Path(cfg.data).exists():
        return None, f"the training data {cfg.data} is not here"
    quiet = logging.getLogger("emotiscope.training.prepare")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the members' runs already warned about their split
    try:
        _, held_out, source = prepare_data(cfg)
    finally:
        quiet.setLevel(level)
    return held_out, source


@torch.no_grad()
def ensemble_logits(model: torch.nn.Module, spec: InputSpec, faces: np.ndarray,
                    batch: int = 512) -> np.ndarray:
    out = [model(normalize(torch.from_numpy(faces[i:i + batch]).float()[:, None], spec.mean, spec.std))
           for i in range(0, len(faces), batch)]
    return torch.cat(out).numpy()


def export_ensemble(paths: list[Path], out: Path, command: str = "", tta: str = "none") -> dict:
    """Write the ensemble of `paths` to `out` with its contract; returns {sha256, parity,
    validation, temperature} (validation None where no shared held-out slice exists)."""
    members = [load_member(Path(p)) for p in paths]
    model, spec, labels, records = build_ensemble(members)
    metrics: dict = {"macs": count_macs(model, spec.size, spec.channels)}
    held_out, source = shared_holdout(members)
    temperature = 1.0
    if held_out is None:
        print(f"{display(out)}: not validated and not calibrated: {source}", file=sys.stderr)
    else:
        logits = ensemble_logits(model, spec, held_out.images)
        y = map_labels(held_out, tuple(labels))
        report = classification_report(y, logits.argmax(1), labels)
        metrics["validation"] = {k: report[k] for k in ("accuracy", "macro_f1", "per_class")}
        metrics["validation"].update(n=len(y), source=source)
        metrics["calibration"] = calibrate.calibration_record(logits, y, source)
        temperature = metrics["calibration"]["temperature"]
    training = {"command": command, "members": [
        {"file": str(m.path), "arch": m.arch, "validation_accuracy": m.accuracy,
         "temperature": m.temperature, "command": m.command}
        for m in members]}
    meta = build_metadata(labels, spec, "ensemble", {"members": records}, training, metrics)
    meta["temperature"], meta["tta"] = temperature, tta
    result = export_onnx(model, Path(out), meta)
    return {**result, "validation": metrics.get("validation"), "temperature": temperature}
