"""Typed errors. Every message says what was wrong and how to fix it, in one line."""

from __future__ import annotations


class EmotiscopeError(Exception):
    """Base class of every error emotiscope raises on purpose."""


class InputError(EmotiscopeError):
    """An input file, image, video or argument cannot be used."""


class UnsupportedImageError(InputError):
    """An image in a format (JPEG 2000, AVIF, ...) or layout (a 5-channel TIFF) emotiscope
    does not read; converting it helps, re-exporting the same format does not."""


class ImageTooLargeError(InputError):
    """An image with more pixels than the limit that guards against decompression bombs."""


class ModelError(EmotiscopeError):
    """The model file is missing, corrupt, or lacks emotiscope metadata."""


class DataError(EmotiscopeError):
    """A training or evaluation data set is malformed."""


class ConfigError(EmotiscopeError):
    """An option value is invalid or options contradict each other."""


class OutputError(EmotiscopeError):
    """An output file or folder cannot be written (a folder given for a file, no permission,
    a disk that is full, an encoder that cannot write the format)."""


class OutputExistsError(OutputError):
    """An output path exists and would be overwritten without --force."""


class DependencyError(EmotiscopeError):
    """An optional dependency (extra) is needed but not installed."""


class ServiceError(EmotiscopeError):
    """The web service cannot start: its address or port cannot be used."""
