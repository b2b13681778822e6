"""Keep the C heap's large buffers between detections (glibc on Linux only).

glibc serves blocks above its mmap threshold (128 KB at first, raised as such blocks are freed,
at most 32 MB) with fresh mmap()s, and returns free memory at the heap's top to the kernel once
it exceeds the trim threshold. The face detector allocates and frees tens of MB of working
buffers on every call, so each call paid for them again as page faults: ~5,000 faults and
10-12 ms of system time per 640x480 frame (benchmarks/bench_throughput.py measures it).
Fixed thresholds keep those buffers in the heap; the price is that up to TRIM_BYTES of freed
memory per arena stays with the process instead of going back to the system.

Called when a detector is created, never at import. Anyone who set glibc's own tunables
(MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ / GLIBC_TUNABLES) keeps them.
"""

from __future__ import annotations

import os
import sys
import threading

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit systems
TRIM_BYTES = 64 * 1024 * 1024
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_lock = threading.Lock()
_state: bool | None = None  # None: not tried yet; then whether the thresholds were set


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they are set."""
    global _state
    with _lock:
        if _state is None:
            _state = _set_thresholds()
        return _state


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _USER_SETTINGS):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- only glibc has it (musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                        TRIM_BYTES))
