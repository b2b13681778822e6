"""`emotiscope export CHECKPOINT`: a training checkpoint (.pt) -> ONNX with its contract inside."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import ConfigError, DependencyError
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
        from ..preprocess import MAX_MARGIN
        from ..training.export import export_checkpoint
    except ImportError as exc:
        raise DependencyError("export needs torch and onnx: pip install torch==2.13.0 "
                              "'.[train]' in the emotiscope clone") from exc
    if args.crop_margin is not None and not 0 <= args.crop_margin <= MAX_MARGIN:
        raise ConfigError(f"--crop-margin {args.crop_margin} must be between 0 and {MAX_MARGIN}")
    src = Path(args.checkpoint)
    out = check_new(Path(args.output) if args.output else src.with_suffix(".onnx"), args.force,
                    "--output")
    result = export_checkpoint(src, out, crop_margin=args.crop_margin,
                               export_command="emotiscope " + shlex.join(getattr(args, "argv", [])))
    print(f"{display(out)}  sha256 {result['sha256']}  parity {result['parity_max_abs_diff']:.1e}")
    return 0
