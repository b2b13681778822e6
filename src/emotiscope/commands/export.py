"""`emotiscope export CHECKPOINT [MODEL ...]`: a training checkpoint (.pt) -> ONNX with its
contract inside; several checkpoints or models -> one ensemble model (training/ensemble.py)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import ConfigError, DependencyError
from ..model_file import CHECKPOINT_SUFFIXES, TTA_MODES
from ..options import add_tta_flags, finite_float
from ..outputs import display, refuse_inputs
from ._out import check_new


def register(sub) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to ONNX, or several models as "
                       "one ensemble (needs [train])")
    p.add_argument("checkpoint", nargs="+",
                   help="best.pt or last.pt from a run folder; an .onnx of ours: the same weights "
                   "with --tta / --crop-margin changed; with more than one (.pt or .onnx of ours), "
                   "one model that averages their probabilities")
    p.add_argument("-o", "--output", help="the .onnx to write (default: beside the checkpoint; "
                   "needed for an ensemble)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_tta_flags(p, TTA_MODES, "the views every verb classifies unless told otherwise: the "
                  "face (none) or the face and its mirror image averaged (flip, twice the cost)",
                  default="none", shown="none")
    p.add_argument("--member-tta", metavar="TTA,...",
                   help="ensembles: each member's views inside the ensemble, in the members' order, "
                   "none or flip (the face and its mirror image, each as one more member), e.g. "
                   "flip,none (default: none for every member)")
    p.add_argument("--val", metavar="DATA",
                   help="ensembles whose members share no held-out slice: validate on DATA's val "
                   "split (a fer2013.csv or a folder with val/) and store the metrics; no "
                   "temperature is fitted there")
    p.add_argument("--crop-margin", type=finite_float, metavar="F",
                   help="set the face-box margin the model asks for at inference (default: as trained)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..preprocess import MAX_MARGIN
        from ..training.export import export_checkpoint
    except ImportError as exc:
        raise DependencyError("export needs torch and onnx: pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc
    if args.crop_margin is not None and not 0 <= args.crop_margin <= MAX_MARGIN:
        raise ConfigError(f"--crop-margin {args.crop_margin} must be between 0 and {MAX_MARGIN}")
    command = "emotiscope " + shlex.join(getattr(args, "argv", []))
    if len(args.checkpoint) > 1:
        return _ensemble(args, command)
    if args.member_tta or args.val:
        raise ConfigError(f"{'--member-tta' if args.member_tta else '--val'} is for ensembles: pass two "
                          "or more models")
    src = Path(args.checkpoint[0])
    out = _check_output(Path(args.output) if args.output else src.with_suffix(".onnx"), args)
    if src.suffix == ".onnx":
        from ..training.export import restamp_onnx

        result = restamp_onnx(src, out, tta=args.tta, crop_margin=args.crop_margin, command=command)
        print(f"{display(out)}  sha256 {result['sha256']}  (the weights of {display(src)}, tta "
              f"{args.tta})")
        return _refresh_sidecar(out, result["sha256"])
    result = export_checkpoint(src, out, crop_margin=args.crop_margin, tta=args.tta,
                               export_command=command)
    print(f"{display(out)}  sha256 {result['sha256']}  parity {result['parity_max_abs_diff']:.1e}")
    return _refresh_sidecar(out, result["sha256"])


def _check_output(out: Path, args: argparse.Namespace) -> Path:
    """`out` if the ONNX model may be written there: not named like a checkpoint (every loader
    refuses those), not a checkpoint or member it is made from (even with --force), and new."""
    if out.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise ConfigError(f"--output {display(out)}: {out.suffix} names a training checkpoint, but "
                          f"export writes an ONNX model; name it {display(out.with_suffix('.onnx'))}")
    sources = [p for p in args.checkpoint if len(args.checkpoint) > 1 or Path(p).suffix != ".onnx"]
    refuse_inputs([("--output", out)], sources)  # one .onnx restamped in place keeps its weights
    return check_new(out, args.force, "--output")


def _refresh_sidecar(out: Path, sha256: str) -> int:
    """A `<model>.sha256` beside the output held the old model's checksum: rewrite it and say so."""
    from ..model_file import update_sidecar

    if sidecar := update_sidecar(out, sha256):
        print(f"{display(sidecar)}  updated to the new sha256")
    return 0


def _ensemble(args: argparse.Namespace, command: str) -> int:
    from ..training.ensemble import export_ensemble

    if not args.output:
        raise ConfigError(f"{len(args.checkpoint)} models make one ensemble: name it with -o FILE.onnx")
    if args.crop_margin is not None:
        raise ConfigError("--crop-margin applies to one checkpoint; an ensemble keeps its members' margin")
    out = _check_output(Path(args.output), args)
    member_tta = [t.strip() for t in args.member_tta.split(",")] if args.member_tta else None
    result = export_ensemble([Path(p) for p in args.checkpoint], out, command, args.tta, member_tta,
                             Path(args.val) if args.val else None)
    val = result["validation"]
    scored = f"  held-out accuracy {val['accuracy']:.2%} (n={val['n']})" if val else ""
    print(f"{display(out)}  sha256 {result['sha256']}  parity {result['parity_max_abs_diff']:.1e}"
          f"  temperature {result['temperature']:g}{scored}")
    return _refresh_sidecar(out, result["sha256"])
