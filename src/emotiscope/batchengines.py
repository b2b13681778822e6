"""The engines of `emotiscope batch`: each turns paths into FileResults as files finish.

local: a process pool on this machine, one recognizer built per worker process (its
       initializer). One worker runs in this process. Each file's rows are streamed into a
       temporary part in the dataset's parts folder as they are made: nothing but its name
       comes back.
ray:   Ray Data, a pool of actors each holding one recognizer (`map_batches` with a callable
       class); a local Ray for the run, or a cluster at `address`. Ray is imported only here and
       only when chosen: `pip install ".[ray]"`. Each file's rows come back as one Arrow table
       (in Arrow's IPC format).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from .batch import FileResult, VideoSettings, analyse_file, make_recognizer
from .errors import DependencyError
from .options import RecognizerOptions

_worker: dict = {}  # this worker process's recognizer and video settings


def _init_worker(options: RecognizerOptions, settings: VideoSettings, temp: Path) -> None:
    _worker["recognizer"] = make_recognizer(options)
    _worker["settings"] = settings
    _worker["temp"] = temp


def _analyse(path: str) -> FileResult:
    return analyse_file(_worker["recognizer"], path, _worker["settings"], _worker["temp"])


def local_results(paths: Sequence[str], options: RecognizerOptions, settings: VideoSettings,
                  workers: int, parts: Path) -> Iterator[FileResult]:
    """FileResults in the order files finish, `workers` files at a time, each file's rows
    written as a temporary part in the folder `parts` (see Store.add). Once the workers are
    done, the run's temporary parts not handed on are removed: those of files finished when the
    caller stopped early, or cut short by a worker that crashed (or was stopped with the pool)."""
    from .batchparts import remove_temp_parts, temp_prefix

    if not paths:
        return
    temp = temp_prefix(parts)
    try:
        if workers <= 1 or len(paths) <= 1:
            recognizer = make_recognizer(options, threads=None)
            for path in paths:
                yield analyse_file(recognizer, path, settings, temp)
        else:
            yield from _pool_results(paths, options, settings, workers, temp)
    finally:
        remove_temp_parts(temp)


def _pool_results(paths: Sequence[str], options: RecognizerOptions, settings: VideoSettings,
                  workers: int, temp: Path) -> Iterator[FileResult]:
    import multiprocessing

    # spawn: a forked child would inherit the parent's ONNX Runtime and OpenMP thread state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(options, settings, temp)) as pool:
        queue = list(reversed(paths))
        running: set = set()
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:  # a few ahead, not the whole list
                    running.add(pool.submit(_analyse, queue.pop()))
                for future in wait(running, return_when=FIRST_COMPLETED).done:
                    running.discard(future)
                    yield future.result()
        finally:
            for future in running:
                future.cancel()
            pool.shutdown(wait=True)  # no worker writes a temporary part after this


class RayAnalyser:
    """Ray Data's callable class: one recognizer per actor, built when the actor starts."""

    def __init__(self, options: RecognizerOptions, settings: VideoSettings) -> None:
        self.recognizer = make_recognizer(options)
        self.settings = settings

    def __call__(self, batch: dict) -> dict:
        results = [analyse_file(self.recognizer, str(path), self.settings) for path in batch["path"]]
        return {"path": [r.path for r in results],
                "rows": [_ipc_bytes(r.table) for r in results],
                "faces": [r.faces for r in results],
                "error": [r.error or "" for r in results]}


def _ipc_bytes(table) -> bytes:
    """A Table in Arrow's IPC stream format (b"" for none): its columns' buffers as they are."""
    import pyarrow as pa

    if table is None:
        return b""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _ipc_table(data: bytes):
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all() if data else None


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
            yield FileResult(row["path"], table=_ipc_table(row["rows"]), faces=row["faces"],
                             error=row["error"] or None)
    finally:
        if started:
            ray.shutdown()
