"""Use every core: a pool of recognizers, and an ordered parallel map over many inputs.

One image runs on one core most of the time (the detector's OpenMP threads help little, and
not at all under load), so throughput comes from analysing independent images at once:

    pool = RecognizerPool.build(2, model="m.onnx")     # two recognizers, one thread each
    with pool.use() as recognizer:                     # in any thread
        faces = recognizer(image)

    for path, result, error in ordered_map(work, paths, workers=2):   # input order kept
        ...

Threads suffice: decoding, resizing (OpenCV), detection (ctypes) and classification
(ONNX Runtime) all release the GIL. Each worker gets a recognizer of its own, so detectors
that are not thread-safe (OpenCV's Haar cascade) are never shared.
"""

from __future__ import annotations

import os
import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import ConfigError
from .types import Recognizer

if TYPE_CHECKING:
    from .pipeline import EmotionRecognizer

T = TypeVar("T")
R = TypeVar("R")
Rec = TypeVar("Rec", bound=Recognizer, covariant=True)  # a pool of EmotionRecognizers is one of Recognizers


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the platform says), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_workers(workers: int | None, flag: str = "--workers") -> int:
    """`workers`, or the number of cores when None; ConfigError below 1."""
    if workers is None:
        return cpu_count()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{flag} must be a whole number of 1 or more, got {workers!r}")
    return workers


def build_recognizers(count: int, **options) -> list[EmotionRecognizer]:
    """`count` EmotionRecognizers with the same options. With more than one, each gets one ONNX
    Runtime thread and one detector thread (unless `threads` says otherwise): the pool, not
    each image, spreads over the cores."""
    from .detect import set_detector_threads
    from .pipeline import EmotionRecognizer

    count = check_workers(count)
    if count > 1:
        options.setdefault("threads", 1)
    recognizers = [EmotionRecognizer(**options) for _ in range(count)]
    if count > 1:
        for recognizer in recognizers:
            set_detector_threads(recognizer.detector, options["threads"])
    return recognizers


class RecognizerPool(Generic[Rec]):
    """Recognizers lent to one thread at a time; a borrower waits while all are in use."""

    def __init__(self, recognizers: Sequence[Rec]) -> None:
        if not recognizers:
            raise ConfigError("a recognizer pool needs at least one recognizer")
        self.recognizers = tuple(recognizers)
        self._free: queue.SimpleQueue[Rec] = queue.SimpleQueue()
        for recognizer in self.recognizers:
            self._free.put(recognizer)

    @staticmethod
    def build(count: int | None = None, **options) -> RecognizerPool[EmotionRecognizer]:
        """`count` recognizers (default: one per core) made with EmotionRecognizer(**options)."""
        return RecognizerPool(build_recognizers(check_workers(count), **options))

    def __len__(self) -> int:
        return len(self.recognizers)

    @property
    def first(self) -> Rec:
        """One of the recognizers: for what they share (labels, model card, settings)."""
        return self.recognizers[0]

    @contextmanager
    def use(self) -> Iterator[Rec]:
        """Borrow a recognizer for the body of the `with`."""
        recognizer = self._free.get()
        try:
            yield recognizer
        finally:
            self._free.put(recognizer)


def ordered_map(func: Callable[[T], R], items: Iterable[T], workers: int = 1,
                ahead: int | None = None) -> Iterator[tuple[T, R | None, Exception | None]]:
    """(item, func(item), None), or (item, None, the exception), for each item in input order.

    workers=1 runs in the calling thread, one item at a time. Otherwise `workers` threads run
    `func`, at most `ahead` items (default 2 per worker) ahead of the one being yielded, which
    bounds the memory held by finished results that wait for their turn.
    """
    if workers <= 1:
        for item in items:
            yield _call(func, item)
        return
    window: deque[tuple[T, Future]] = deque()
    limit = ahead or 2 * workers
    with ThreadPoolExecutor(workers, thread_name_prefix="emotiscope") as executor:
        try:
            for item in items:
                window.append((item, executor.submit(_call, func, item)))
                if len(window) >= limit:
                    yield window.popleft()[1].result()
            while window:
                yield window.popleft()[1].result()
        finally:  # the caller stopped early: drop what has not started
            for _, future in window:
                future.cancel()


def _call(func: Callable[[T], R], item: T) -> tuple[T, R | None, Exception | None]:
    try:
        return item, func(item), None
    except Exception as exc:  # handed to the caller in order, as the sequential loop would see it
        return item, None, exc
