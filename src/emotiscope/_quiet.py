"""Keep C libraries' own warnings (libjpeg, libpng, FFmpeg, OpenCV) off the terminal while we
decode: emotiscope reports the problem itself, in one line."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger("emotiscope")


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """OpenCV's log muted and, in the main thread, file descriptor 2 sent to a temporary file
    for the duration of the block; what the libraries wrote is logged at DEBUG level.

    File descriptors are per process: in other threads (a server's workers) redirecting fd 2
    would swallow other threads' log lines, so there only OpenCV's own log is muted.
    """
    from cv2.utils import logging as cv_logging

    level = cv_logging.getLogLevel()
    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    try:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with tempfile.TemporaryFile() as sink:
            with _stderr_to(sink):
                yield
            sink.seek(0)
            said = sink.read(2000).decode(errors="replace").strip()
        if said:
            log.debug("decoder messages: %s", said.replace("\n", " | "))
    finally:
        cv_logging.setLogLevel(level)


@contextlib.contextmanager
def _stderr_to(sink) -> Iterator[None]:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
