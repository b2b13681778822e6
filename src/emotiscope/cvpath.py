"""Paths for OpenCV calls that open files by name (cv2.VideoCapture, cv2.VideoWriter).

OpenCV's Python binding converts a path to UTF-8, and a name holding bytes that are not valid
UTF-8 (which Python carries as lone surrogates, e.g. b"caf\\xe9.avi") kills the whole process
with a segmentation fault (measured with opencv-python 4.14, for VideoCapture, VideoWriter and
imread alike). Such a path is handed to OpenCV as an ASCII-named symbolic link in a private
temporary folder instead; where no link can be made, the error says to rename the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import InputError
from .outputs import display


def is_utf8(name: str | os.PathLike) -> bool:
    """True when OpenCV can take `name` as it is (it encodes as UTF-8)."""
    try:
        os.fspath(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class OpenCvPath:
    """`path`: a name OpenCV can open for `target` (a file or a folder that exists): the target
    itself when its name is valid UTF-8, else a symbolic link to it that lives until close()."""

    def __init__(self, target: str | os.PathLike) -> None:
        self.path = os.fspath(target)
        self._folder: str | None = None
        if is_utf8(self.path):
            return
        suffix = Path(target).suffix if is_utf8(Path(target).suffix) else ""
        try:
            self._folder = tempfile.mkdtemp(prefix="emotiscope-")
            link = os.path.join(self._folder, "alias" + suffix)
            os.symlink(os.path.abspath(target), link)
        except OSError as exc:
            self.close()
            raise InputError(f"cannot open {display(target)} with OpenCV: its name is not valid "
                             f"UTF-8 and no link to it could be made ({exc.strerror or exc}); "
                             "rename it") from None
        self.path = link

    def close(self) -> None:
        """Remove the link and its folder (never what the link points to)."""
        if self._folder is None:
            return
        with contextlib.suppress(OSError):
            for entry in os.listdir(self._folder):
                os.unlink(os.path.join(self._folder, entry))
            os.rmdir(self._folder)
        self._folder = None
