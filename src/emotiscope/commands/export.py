"""`emotiscope export CHECKPOINT`: a training checkpoint (.pt) -> ONNX with its contract inside."""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError, DependencyError, ModelError
from ..outputs import display
from ._out import check_new


def register(sub) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to ONNX (needs [train])")
    p.add_argument("checkpoint", help="best.pt or last.pt from a run folder")
    p.add_argument("-o", "--output", help="the .onnx to write (default: beside the checkpoint)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--crop-margin", type=float,
                   help="set the face-box margin the model asks for at inference (default: as trained)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..preprocess import MAX_MARGIN, InputSpec
        from ..training import export
        from ..training.checkpoint import load_checkpoint
        from ..training.models import build_model, count_macs
    except ImportError as exc:
        raise DependencyError("export needs torch and onnx: pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc
    src = Path(args.checkpoint)
    ckpt = load_checkpoint(src, ("arch", "labels", "spec"))  # bad weights: see below
    out = check_new(Path(args.output) if args.output else src.with_suffix(".onnx"), args.force,
                    "--output")
    labels, spec, arch = ckpt["labels"], InputSpec.from_dict(ckpt["spec"]), ckpt["arch"]
    try:
        model = build_model(arch, len(labels), spec.channels, **ckpt.get("model_args", {}))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{src} holds no weights that fit its architecture {arch!r} ({first}); "
                         "pass best.pt or last.pt from a run folder") from exc
    if args.crop_margin is not None:
        if not 0 <= args.crop_margin <= MAX_MARGIN:
            raise ConfigError(f"--crop-margin {args.crop_margin} must be between 0 and {MAX_MARGIN}")
        spec = replace(spec, margin=args.crop_margin)
    validation, temperature = checkpoint_metrics(ckpt, src)
    training = export.training_record(ckpt, exported_epoch=ckpt.get("epoch"),
                                      export_command="emotiscope " + shlex.join(getattr(args, "argv", [])))
    metrics = {"validation": validation, "macs": count_macs(model, spec.size, spec.channels)}
    meta = export.build_metadata(labels, spec, arch, ckpt.get("model_args", {}), training, metrics)
    if temperature is not None:
        meta["temperature"] = temperature
    result = export.export_onnx(model, out, meta)
    print(f"{display(out)}  sha256 {result['sha256']}  parity {result['parity_max_abs_diff']:.1e}")
    return 0


def checkpoint_metrics(ckpt: dict, src: Path) -> tuple[dict, float | None]:
    """(validation metrics, calibration temperature or None) of the weights in `ckpt`.

    The run's report.json describes the best epoch: it is used only when the checkpoint holds
    that epoch (best.pt). Any other checkpoint (last.pt of a run whose best epoch came earlier)
    gets its own epoch's row of the history, and no temperature (none was fitted to it)."""
    epoch, history = ckpt.get("epoch"), ckpt.get("history") or []
    report_file = src.parent / "report.json"
    if report_file.is_file():
        try:
            report = json.loads(report_file.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {report_file} beside the checkpoint ({exc}); fix or "
                             "remove it") from None
        if epoch is not None and report.get("best_epoch") == epoch:
            validation = {k: report[k] for k in ("accuracy", "macro_f1", "n", "per_class") if k in report}
            validation["epoch"] = epoch
            return validation, (report.get("calibration") or {}).get("temperature")
    row = next((r for r in history if r.get("epoch") == epoch), None)
    if row is None:
        return {"accuracy": ckpt.get("best_acc"), "epoch": ckpt.get("best_epoch")}, None
    return {"accuracy": row.get("val_acc"), "macro_f1": row.get("val_macro_f1"), "epoch": epoch}, None
