"""Is a video file shorter than its own container header says? (a download or copy that stopped)

OpenCV's frame count is an estimate (often from duration x rate, or an index that includes
frames the decoder drops), so running out of frames before it proves nothing. The byte sizes
that RIFF (AVI) and ISO base media (MP4, MOV, M4V, 3GP) files declare do: if a declared size
runs past the end of the file, the file was cut. Other containers are not checked.
"""

from __future__ import annotations

import os
from typing import BinaryIO

_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}
_MAX_BOXES = 100_000  # top-level boxes read at most; real files have a handful


def cut_short(path: str | os.PathLike) -> bool:
    """True when a declared size in the file's container runs past its end. Reads headers
    only (a few bytes per top-level box); False for formats it does not know."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] == b"RIFF" and len(head) >= 8:
            return int.from_bytes(head[4:8], "little") + 8 > size
        if head[4:8] in _ISO_BOXES:
            return _box_past_end(f, size)
    return False


def _box_past_end(f: BinaryIO, size: int) -> bool:
    offset = 0
    for _ in range(_MAX_BOXES):
        if offset >= size:
            return offset > size  # the last box ends past the end of the file
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8:
            return True  # a box header cut in the middle
        length = int.from_bytes(header[:4], "big")
        if length == 1:  # 64-bit size follows the type
            if len(header) < 16:
                return True
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:  # "runs to the end of the file"
            return False
        if length < 8:
            return False  # not a box layout we understand: no evidence either way
        offset += length
    return False
