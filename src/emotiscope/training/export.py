"""Export a trained network to ONNX with its contract in the metadata, checked against torch."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import ModelError
from ..model_file import METADATA_KEY, file_sha256, import_onnxruntime, verify_checksum
from ..outputs import atomic_path
from ..preprocess import InputSpec

PARITY_TOL = 1e-4


def build_metadata(labels, spec: InputSpec, arch: str, model_args: dict, training: dict,
                   metrics: dict) -> dict:
    return {"format": 1, "labels": list(labels), "input": spec.to_dict(), "output": "logits",
            "arch": arch, "model_args": model_args, "training": training, "metrics": metrics,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "version": __version__, "torch_version": torch.__version__}


def training_record(ckpt: dict, folder: Path | None = None, **extra) -> dict:
    """The "training" metadata of a model from its checkpoint dict: command, config, the best
    epoch and the epochs the run trained (`epochs_run`, see epochs_run; `folder`: the run's)."""
    return {"command": ckpt.get("command", ""), "config": ckpt.get("config", {}),
            "best_epoch": ckpt.get("best_epoch"), "epochs_run": epochs_run(ckpt, folder), **extra}


def epochs_run(ckpt: dict, folder: Path | None) -> int | None:
    """The epochs the checkpoint's run trained: the rows of the history.json in its run `folder`
    when that history holds the checkpoint's epoch as the checkpoint has it (best.pt's epoch is
    the best one, not the last), else the checkpoint's own epoch."""
    epoch, rows = ckpt.get("epoch"), ckpt.get("history") or []
    if folder is None or not isinstance(epoch, int) or not rows:
        return epoch
    try:
        history = json.loads((folder / "history.json").read_text())
    except (OSError, ValueError):
        return epoch
    same_run = isinstance(history, list) and len(history) >= epoch >= 1 and history[epoch - 1] == rows[-1]
    return len(history) if same_run else epoch


def parity_check(model: torch.nn.Module, path: Path, spec: InputSpec, batch: int = 5) -> float:
    """Max |onnxruntime - torch| on a random batch; raises ModelError above PARITY_TOL."""
    ort = import_onnxruntime()
    x = torch.randn(batch, spec.channels, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    if diff > PARITY_TOL:
        raise ModelError(f"ONNX export of {path} differs from torch by {diff:.2e} > {PARITY_TOL}; "
                         "report this as a bug with the architecture name")
    return diff


def export_onnx(model: torch.nn.Module, path: Path, metadata: dict) -> dict:
    """Write `path` (dynamic batch, logits output) atomically; returns {sha256, parity}."""
    import onnx

    spec = InputSpec.from_dict(metadata["input"])
    # torch's stub for Module.to omits memory_format, which Module.to documents and accepts
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    path = Path(path)
    dummy = torch.zeros(1, spec.channels, spec.size, spec.size)
    with atomic_path(path) as tmp:  # a failed parity check leaves no model behind
        # No constant folding: parameter names stay those of the state dict, so --init-from can
        # read an .onnx back; ONNX Runtime fuses conv + batch norm itself when it loads the model.
        torch.onnx.export(model, (dummy,), str(tmp), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False, do_constant_folding=False)
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
        proto.doc_string = f"emotiscope {metadata.get('arch')} emotion classifier"
        onnx.save(proto, str(tmp))
        diff = parity_check(model, tmp, spec)
    return {"sha256": file_sha256(path), "parity_max_abs_diff": diff}


def export_checkpoint(checkpoint: str | Path | dict, out: Path, *, report: dict | None = None,
                      crop_margin: float | None = None, tta: str = "none", **training_extra) -> dict:
    """THE export: a checkpoint (a .pt path or a dict from load_checkpoint) -> `out`, an ONNX
    model with its contract in the metadata (labels, input spec, arch, training record, the
    validation metrics and calibration temperature of the epoch exported). Returns
    {sha256, parity_max_abs_diff}.

    `report` is the run's report (report.json beside a checkpoint path when not given): its
    metrics and temperature are stamped only when it describes the checkpoint's epoch.
    `crop_margin` changes the face-box margin the model asks for; `training_extra` adds to or
    overrides the "training" record (train_counts, epochs_run, export_command...). `tta`: the
    views every verb classifies by default ("flip": the face and its mirror image)."""
    from dataclasses import replace

    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .models import count_macs

    source = Path(checkpoint) if not isinstance(checkpoint, dict) else Path("the checkpoint")
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(source, ("arch", "labels", "spec"))
    if report is None and not isinstance(checkpoint, dict):
        report = read_report(source.parent / "report.json")
    model = model_from_checkpoint(ckpt, source)
    spec = InputSpec.from_dict(ckpt["spec"])
    if crop_margin is not None:
        spec = replace(spec, margin=crop_margin)
    metrics, temperature = checkpoint_metrics(ckpt, report)
    metrics["macs"] = count_macs(model, spec.size, spec.channels)
    meta = build_metadata(ckpt["labels"], spec, ckpt["arch"], ckpt.get("model_args", {}),
                          training_record(ckpt, None if isinstance(checkpoint, dict) else source.parent,
                                          exported_epoch=ckpt.get("epoch"), **training_extra),
                          metrics)
    if temperature is not None:
        meta["temperature"] = temperature
    meta["tta"] = tta
    return export_onnx(model, Path(out), meta)


def restamp_onnx(src: Path, out: Path, *, tta: str = "none", crop_margin: float | None = None,
                 command: str = "") -> dict:
    """An .onnx model of ours written to `out` with its contract changed (the views every verb
    classifies, `tta`; the crop margin) and its weights untouched; the training record keeps
    where it came from. Returns {sha256}."""
    import onnx

    _, meta = onnx_state_dict(src, "export")  # ModelError for a file that is not ours
    proto = onnx.load(str(src))
    meta["tta"] = tta
    if crop_margin is not None:
        meta["input"] = {**meta["input"], "margin": crop_margin}
    meta.setdefault("training", {})["restamped"] = {"from": Path(src).name, "sha256": file_sha256(src),
                                                    "command": command}
    with atomic_path(Path(out)) as tmp:
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
        onnx.save(proto, str(tmp))
    return {"sha256": file_sha256(out)}


def read_report(path: Path) -> dict | None:
    """A run's report.json, None when there is none; ModelError when it cannot be read."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path} beside the checkpoint ({exc}); fix or remove it") from None


def checkpoint_metrics(ckpt: dict, report: dict | None) -> tuple[dict, float | None]:
    """({"validation": ..., ["calibration": ...]}, calibration temperature or None) of the
    weights in `ckpt`.

    The run's report describes the best epoch: it is used only when the checkpoint holds that
    epoch (best.pt). Any other checkpoint (last.pt of a run whose best epoch came earlier) gets
    its own epoch's row of the history, and no temperature (none was fitted to it)."""
    epoch, history = ckpt.get("epoch"), ckpt.get("history") or []
    if report and epoch is not None and report.get("best_epoch") == epoch:
        validation = {k: report[k] for k in ("accuracy", "macro_f1", "n", "per_class", "source")
                      if k in report}
        validation["epoch"] = epoch
        calibration = report.get("calibration") or {}
        metrics = {"validation": validation, **({"calibration": calibration} if calibration else {})}
        return metrics, calibration.get("temperature")
    row = next((r for r in history if r.get("epoch") == epoch), None)
    if row is None:
        return {"validation": {"accuracy": ckpt.get("best_acc"), "epoch": ckpt.get("best_epoch")}}, None
    return {"validation": {"accuracy": row.get("val_acc"), "macro_f1": row.get("val_macro_f1"),
                           "epoch": epoch}}, None


@dataclass
class TrainedModel:
    """One of our trained models as `read_trained` finds it in a .pt checkpoint or an .onnx file."""

    path: Path
    arch: str
    model_args: dict
    labels: list[str]
    spec: InputSpec | None  # None only for a checkpoint that predates the input contract
    weights: dict
    temperature: float = 1.0
    config: dict = field(default_factory=dict)  # the run's TrainConfig (checkpoints only)
    accuracy: float | None = None  # its own validation accuracy, as recorded
    command: str = ""


def read_trained(path: Path, flag: str, need: tuple[str, ...] = ("model", "arch")) -> TrainedModel:
    """The model in one of our .pt checkpoints (with its run's report.json, when beside it) or
    .onnx files; ModelError naming `flag` for anything else. `need`: the checkpoint keys required.
    An ensemble is read as it is: callers that need a single network refuse arch "ensemble"."""
    from .checkpoint import load_checkpoint

    path = Path(path)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"{flag} {path} does not exist; pass an .onnx model or a .pt checkpoint of ours")
        verify_checksum(path, file_sha256(path))  # as predict, evaluate and batch do
        weights, meta = onnx_state_dict(path, flag)
        if "arch" not in meta:
            raise ModelError(f"{flag} {path} has no 'arch' in its metadata; pass a model exported by "
                             "`emotiscope train` or `emotiscope export`")
        spec = meta.get("input")
        return TrainedModel(
            path, meta["arch"], dict(meta.get("model_args", {})), list(meta.get("labels", [])),
            InputSpec.from_dict(spec) if spec else None, weights, float(meta.get("temperature", 1.0)),
            accuracy=(meta.get("metrics") or {}).get("validation", {}).get("accuracy"),
            command=(meta.get("training") or {}).get("command", ""))
    ckpt = load_checkpoint(path, need, flag)
    metrics, temperature = checkpoint_metrics(ckpt, read_report(path.parent / "report.json"))
    spec = ckpt.get("spec")
    return TrainedModel(
        path, ckpt["arch"], dict(ckpt.get("model_args", {})), list(ckpt.get("labels", [])),
        InputSpec.from_dict(spec) if spec else None, ckpt["model"], float(temperature or 1.0),
        ckpt.get("config", {}), metrics["validation"].get("accuracy"), ckpt.get("command", ""))


def onnx_state_dict(path: Path, flag: str = "--init-from") -> tuple[dict, dict]:
    """Weights (by state-dict name) and metadata of an ONNX model exported by emotiscope; `flag`
    names the option the path came from, for the message."""
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others
        raise ModelError(f"cannot read ONNX model {path} ({exc}); "
                         "pass a model exported by emotiscope") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{flag} {path} has no emotiscope metadata (it was not exported by "
                         "emotiscope); pass one of our .pt checkpoints or .onnx models")
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    return weights, json.loads(props[METADATA_KEY])
