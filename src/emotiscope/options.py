"""RecognizerOptions: every setting of face detection and classification, defined once.

Each field carries its command-line flag, help text and value parser in its metadata.
`add_recognizer_flags(parser)` puts the flags on a parser and `options_from_args(args)` reads
them back, so every inference verb (predict, video, webcam, serve, evaluate) offers the same
flags, with the same names and defaults, from this one table:

    >>> options = RecognizerOptions(detector="haar", min_face=30)
    >>> EmotionRecognizer(options)      # or EmotionRecognizer(detector="haar", min_face=30)

This module imports nothing heavy: the command line builds its parsers from it at start-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .types import ASSUME_CROP

DETECTORS = ("auto", "yunet", "haar")
DEFAULT_MAX_SIDE = 640  # 640x480 frames run at full size; see docs/DETECTION.md
DEFAULT_MAX_PIXELS = 50_000_000
MIN_MAX_SIDE = 32
MAX_MIN_FACE = 100_000  # pixels: --min-face above any photo's side is a typo
_EXAMPLES = {"min_face": 20, "threshold": 0.6, "max_side": DEFAULT_MAX_SIDE}  # in messages


# -- command-line value parsers: argparse reports their errors with the flag the user typed --

def comma_list(text: str) -> list[str]:
    """'happy, sad' -> ['happy', 'sad'] (the parser of every list flag: --classes, ...); an
    empty item ('', 'happy,,sad', ',,') is refused rather than dropped."""
    items = [part.strip() for part in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} holds an empty name; give names separated "
                                         "by single commas, e.g. happy,sad")
    return items


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def finite_float(text: str) -> float:
    """A number, but not nan or inf: the parser of every float flag."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def min_face(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_MIN_FACE:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_MIN_FACE} pixels, got {value}")
    return value


def max_side(text: str) -> int:
    value = int(text)
    if value != 0 and value < MIN_MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be 0 (full resolution) or at least "
                                         f"{MIN_MAX_SIDE}, got {value}")
    return value


def megapixels(text: str) -> int:
    """--max-megapixels MP -> pixels (a finite number, at least one pixel)."""
    pixels = float(text) * 1e6
    if not (math.isfinite(pixels) and pixels >= 1):
        raise argparse.ArgumentTypeError(f"must be a number of megapixels from 0.000001 (one "
                                         f"pixel) up, got {text}")
    return int(pixels)


def check_detection(min_face: int, threshold: float, max_side: int | None) -> None:
    """ConfigError for detector settings of the wrong type or out of range (the Python API's
    check; the command line's parsers above refuse the same values with the flag's name)."""
    for name, value, kind in (("min_face", min_face, numbers.Integral),
                              ("threshold", threshold, numbers.Real),
                              ("max_side", max_side, numbers.Integral)):
        if (value is not None or name != "max_side") and (  # max_side None: the default
                isinstance(value, bool) or not isinstance(value, kind)):
            what = "a whole number of pixels" if kind is numbers.Integral else "a number"
            raise ConfigError(f"{name} must be {what}, got {value!r} ({type(value).__name__}); "
                              f"pass e.g. {name}={_EXAMPLES[name]}")
    if not 1 <= min_face <= MAX_MIN_FACE:
        raise ConfigError(f"min_face must be 1 to {MAX_MIN_FACE} pixels, got {min_face}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
    if max_side is not None and max_side != 0 and max_side < MIN_MAX_SIDE:
        raise ConfigError(f"max_side must be at least {MIN_MAX_SIDE} pixels (or 0 for full "
                          f"resolution), got {max_side}")


def flag(name: str, help: str, *, type: Callable[[str], Any] | None = None,
         metavar: str | None = None, choices: Iterable[str] | None = None,
         shown: Callable[[Any], str] | None = None, deprecated: tuple[str, ...] = ()) -> dict:
    """Field metadata: the flag, its help (the default is appended), the parser of its value,
    how to show the default (`shown`), and old names kept for one release (`deprecated`)."""
    return {"flag": name, "help": help, "type": type, "metavar": metavar,
            "choices": tuple(choices) if choices else None, "shown": shown,
            "deprecated": deprecated}


@dataclass(frozen=True)
class RecognizerOptions:
    """How faces are found and classified. Sizes in original-image pixels.

    model: .onnx path (None: $EMOTISCOPE_MODEL, then the bundled model).
    detector: "auto", "yunet", "haar" or an object with detect(image) -> list[Box].
    max_side: longest side of the copy detection runs on (0: full resolution).
    max_pixels: images with more pixels (width * height) are refused before decoding.
    assume_crop: whether an image with no face detected is itself one face (pipeline.py).
    """

    model: str | os.PathLike | None = field(default=None, metadata=flag(
        "--model", "model file", metavar="ONNX", shown=lambda _: "$EMOTISCOPE_MODEL, else the "
        "bundled model"))
    detector: Any = field(default="auto", metadata=flag(
        "--detector", "face detector: auto = yunet where installed, else haar",
        choices=DETECTORS))
    min_face: int = field(default=20, metadata=flag(
        "--min-face", "ignore faces smaller than PX pixels", type=min_face, metavar="PX"))
    threshold: float = field(default=0.6, metadata=flag(
        "--threshold", "detector confidence needed, 0..1", type=fraction, metavar="P"))
    max_side: int = field(default=DEFAULT_MAX_SIDE, metadata=flag(
        "--max-side", "detect on a copy at most PX pixels long; smaller is faster but misses "
        "small faces; 0 = full resolution", type=max_side, metavar="PX",
        deprecated=("--detect-size",)))
    flip_tta: bool | None = field(default=None, metadata=flag(
        "--tta", "classify the face and its mirror image and average them (--no-tta: the face "
        "only); default: as the model file says (`emotiscope info`: tta)"))
    assume_crop: str = field(default="auto", metadata=flag(
        "--assume-crop", "when no face is detected, take the whole image as one face crop: "
        "auto = only a small (<= 64 px), square, non-flat, non-noise image such as a 48x48 FER "
        "crop; always; never. Such faces are marked assumed", choices=ASSUME_CROP))
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata=flag(
        "--max-megapixels", "refuse larger images before decoding them", type=megapixels,
        metavar="MP", shown=lambda px: f"{px / 1e6:g}"))

    def __post_init__(self) -> None:
        if self.max_side is None:  # the Python API's "detector default"
            object.__setattr__(self, "max_side", DEFAULT_MAX_SIDE)
        check_detection(self.min_face, self.threshold, self.max_side)
        if self.model is not None and not isinstance(self.model, str | os.PathLike):
            raise ConfigError(f"model must be the path of an .onnx file (str or Path) or None for "
                              f"the bundled model, got a {type(self.model).__name__}")
        if isinstance(self.detector, str) and self.detector not in DETECTORS:
            raise ConfigError(f"unknown detector {self.detector!r}; choose one of "
                              f"{', '.join(DETECTORS)}")
        if self.flip_tta is not None and not isinstance(self.flip_tta, bool):  # "no" is truthy
            raise ConfigError(f"flip_tta must be True, False or None (as the model file says), "
                              f"got {self.flip_tta!r}")
        if self.assume_crop not in ASSUME_CROP:
            raise ConfigError(f"assume_crop must be one of {', '.join(ASSUME_CROP)}, "
                              f"got {self.assume_crop!r}")
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) \
                or self.max_pixels < 1:
            raise ConfigError(f"max_pixels must be a whole number of pixels above 0, "
                              f"got {self.max_pixels!r}")

    def replace(self, **changes) -> RecognizerOptions:
        """A copy with some fields changed (TypeError for a name that is no field)."""
        return dataclasses.replace(self, **changes) if changes else self


DETECTION = ("model", "detector", "min_face", "threshold", "max_side", "max_pixels")
"""The fields every inference verb offers; predict and serve add flip_tta and assume_crop."""


class _Deprecated(argparse.Action):
    """An old flag name: stores like the new one and says, once, to use the new one."""

    def __init__(self, *args, new: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"emotiscope: {option_string} is deprecated and will be removed in the next "
              f"release; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_recognizer_flags(parser: argparse.ArgumentParser, only: Iterable[str] | None = None,
                         title: str = "face detection and classification") -> None:
    """Add the flags of RecognizerOptions' fields (all, or those named in `only`) to `parser`,
    in an argument group named `title`, with the fields' defaults; `options_from_args` reads
    them back."""
    wanted = set(only) if only is not None else None
    group = parser.add_argument_group(title)
    for f in fields(RecognizerOptions):
        if wanted is not None and f.name not in wanted:
            continue
        meta = f.metadata
        shown = meta["shown"](f.default) if meta["shown"] else f.default
        if str(f.type).startswith("bool"):  # on, off (--no-...), or the default
            group.add_argument(meta["flag"], dest=f.name, action=argparse.BooleanOptionalAction,
                               default=f.default, help=meta["help"])
            continue
        help_text = f"{meta['help']} (default: {shown})"
        kwargs = {"dest": f.name, "default": f.default, "metavar": meta["metavar"]}
        kwargs.update({k: meta[k] for k in ("type", "choices") if meta[k] is not None})
        group.add_argument(meta["flag"], help=help_text, **kwargs)
        for old in meta["deprecated"]:
            group.add_argument(old, action=_Deprecated, new=meta["flag"], help=argparse.SUPPRESS,
                               **kwargs)


def add_tta_flags(parser: argparse.ArgumentParser, views: Iterable[str], help: str,
                  default: str | None, shown: str) -> None:
    """--tta VIEWS of evaluate and export (the views by name), where --tta alone is flip and
    --no-tta is none, as the --tta/--no-tta switch of the inference verbs means."""
    names = list(views)

    def view(value: str) -> str:  # argparse's own "invalid choice" hides why DATA went missing
        if value in names:
            return value
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a view ({', '.join(names)}); --tta alone means flip: write --tta "
            f"flip, or give --tta after the other arguments")

    parser.add_argument("--tta", type=view, nargs="?", const="flip", default=default,
                        metavar="{" + ",".join(names) + "}",
                        help=f"{help}; --tta alone: flip (default: {shown})")
    parser.add_argument("--no-tta", dest="tta", action="store_const", const="none",
                        help="the face only: the same as --tta none")


def options_from_args(args: argparse.Namespace) -> RecognizerOptions:
    """RecognizerOptions from parsed flags; fields a verb does not offer keep their defaults."""
    given = {f.name: getattr(args, f.name) for f in fields(RecognizerOptions)
             if hasattr(args, f.name)}
    return RecognizerOptions(**given)

