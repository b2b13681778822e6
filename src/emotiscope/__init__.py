"""emotiscope: faces -> seven emotions, offline, on a laptop CPU.

    >>> import emotiscope
    >>> faces = emotiscope.analyze("group.jpg")   # [FaceEmotion(box=Box(...), label="happy", ...)]

Importing this package does no work: heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    ConfigError,
    DataError,
    DependencyError,
    EmotiscopeError,
    InputError,
    ModelError,
    OutputError,
    OutputExistsError,
)
from .types import Box, FaceEmotion

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (tool.setuptools.dynamic)

_LAZY = {
    "EmotionRecognizer": "pipeline",
    "RecognizerOptions": "options",
    "analyze": "pipeline",
    "annotate": "draw",
    "load_image": "images",
    "sample_image_path": "images",
}

if TYPE_CHECKING:  # pragma: no cover
    from .draw import annotate
    from .images import load_image, sample_image_path
    from .options import RecognizerOptions
    from .pipeline import EmotionRecognizer, analyze


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'emotiscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, loaded or not: notebooks complete `emotiscope.an<Tab>` from this."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Box", "FaceEmotion", "EmotionRecognizer", "RecognizerOptions", "analyze", "annotate", "load_image",
    "sample_image_path",
    "EmotiscopeError", "InputError", "ModelError", "DataError", "ConfigError",
    "OutputError", "OutputExistsError", "DependencyError", "__version__",
]
