"""The engines of `emotiscope batch`: each turns paths into FileResults as files finish.

local: a process pool on this machine, one recognizer built per worker process (its
       initializer). One worker runs in this process.
ray:   Ray Data, a pool of actors each holding one recognizer (`map_batches` with a callable
       class); a local Ray for the run, or a cluster at `address`. Ray is imported only here and
       only when chosen: `pip install ".[ray]"`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from .batch import FileResult, VideoSettings, analyse_file, make_recognizer
from .errors import DependencyError
from .options import RecognizerOptions

_worker: dict = {}  # this worker process's recognizer and video settings


def _init_worker(options: RecognizerOptions, settings: VideoSettings) -> None:
    _worker["recognizer"] = make_recognizer(options)
    _worker["settings"] = settings


def _analyse(path: str) -> FileResult:
    return analyse_file(_worker["recognizer"], path, _worker["settings"])


def local_results(paths: Sequence[str], options: RecognizerOptions, settings: VideoSettings,
                  workers: int) -> Iterator[FileResult]:
    """FileResults in the order files finish, `workers` files at a time."""
    if not paths:
        return
    if workers <= 1 or len(paths) <= 1:
        recognizer = make_recognizer(options, threads=None)
        for path in paths:
            yield analyse_file(recognizer, path, settings)
        return
    import multiprocessing

    # spawn: a forked child would inherit the parent's ONNX Runtime and OpenMP thread state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(options, settings)) as pool:
        queue = list(reversed(paths))
        running: set = set()
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:  # a few ahead, not the whole list
                    running.add(pool.submit(_analyse, queue.pop()))
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in running:
                future.cancel()


class RayAnalyser:
    """Ray Data's callable class: one recognizer per actor, built when the actor starts."""

    def __init__(self, options: RecognizerOptions, settings: VideoSettings) -> None:
        self.recognizer = make_recognizer(options)
        self.settings = settings

    def __call__(self, batch: dict) -> dict:
        import json

        results = [analyse_file(self.recognizer, str(path), self.settings) for path in batch["path"]]
        return {"path": [r.path for r in results],
                "rows": [json.dumps(r.rows) for r in results],
                "labels": [json.dumps(r.labels) for r in results],
                "error": [r.error or "" for r in results]}


def ray_results(paths: Sequence[str], options: RecognizerOptions, settings: VideoSettings,
                workers: int, address: str | None = None) -> Iterator[FileResult]:
    """FileResults from a Ray Data pipeline over `paths` with `workers` actors. Every node must
    see the paths (a shared file system); the rows come back to this process. With no paths
    nothing is done (Ray is neither imported nor started)."""
    if not paths:
        return
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise DependencyError('--engine ray needs Ray Data: pip install ".[ray]" in the '
                              'emotiscope clone') from exc
    import json
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the command shows its own progress
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the command shows its own bar
        items = ray.data.from_items([{"path": p} for p in paths],
                                     override_num_blocks=min(len(paths), 64 * workers))
        dataset = items.map_batches(RayAnalyser, fn_constructor_kwargs={
            "options": options, "settings": settings}, batch_size=1, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=workers))
        for row in dataset.iter_rows():
            yield FileResult(row["path"], json.loads(row["rows"]), tuple(json.loads(row["labels"])),
                             row["error"] or None)
    finally:
        if started:
            ray.shutdown()
