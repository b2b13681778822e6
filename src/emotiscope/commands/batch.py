"""`emotiscope batch INPUT... --out DIR`: photos and videos at archive scale into a Parquet dataset.

The rows are predict's (photos) and video's (videos); the layout of DIR, resuming and the
engines are described in emotiscope/batch.py and docs/BATCH.md. Exit 0 when every file was
analysed, 1 when any failed (listed on stderr and in DIR/failures.json) or another run is
writing DIR (batchlock.py), 2 for usage errors.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from ..errors import ConfigError, DependencyError
from ..options import add_recognizer_flags, options_from_args, positive_int
from ..outputs import display
from .video import add_tracking_flags, check_tracking_options

HELP = "analyse many photos and videos into a Parquet dataset (resumable; local or Ray)"
ENGINES = ("local", "ray")


def register(subparsers) -> None:
    p = subparsers.add_parser("batch", help=HELP, description=HELP)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="photo and video files, folders (searched recursively), glob patterns, "
                        "or @LIST: a text file of such paths, one a line")
    p.add_argument("--from-file", action="append", default=[], metavar="LIST",
                   help="a text file of paths, one a line (same as @LIST; may be repeated; "
                        "- reads them from standard input)")
    p.add_argument("--out", required=True, metavar="DIR", type=Path,
                   help="the dataset folder: DIR/parts/*.parquet, done.jsonl, summary.json, "
                        "failures.json; an earlier DIR is resumed (finished files skipped)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: a process pool on this machine; ray: Ray Data actors, on a "
                        "local Ray or the cluster at --address (needs the [ray] extra) "
                        "(default: local)")
    p.add_argument("--address", metavar="ADDR",
                   help="with --engine ray: join this Ray cluster (e.g. 10.0.0.5:6379 or auto) "
                        "instead of starting a local Ray for the run")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="files analysed at once, each by a worker with its own recognizer "
                        "(default: one per CPU core)")
    p.add_argument("--force", action="store_true",
                   help="start DIR over when it holds rows made with other settings")
    add_recognizer_flags(p)
    add_tracking_flags(p, detect_every=5)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..batch import VideoSettings, collect_inputs, dataset_settings, flag_settings, make_recognizer
    from ..batchlock import lock_out
    from ..workers import cpu_count

    check_tracking_options(args)
    _check_engine(args)
    items = [*args.inputs, *(f"@{name}" for name in args.from_file)]
    if not items:
        raise ConfigError("give at least one photo, video, folder, glob pattern or @LIST")
    if items.count("@-") > 1:
        raise ConfigError("the list of paths on standard input (@- or --from-file -) is given "
                          "more than once; give it once")
    options, video = options_from_args(args), VideoSettings(args.detect_every, args.smooth,
                                                            args.keep_for)
    with lock_out(args.out):  # one run writes DIR at a time; released however the run ends
        paths, failures = collect_inputs(items)
        # One recognizer here: a bad model or detector fails in one line before any worker
        # starts, and the dataset records the model and detector it resolves to.
        settings = dataset_settings(options, video, make_recognizer(options))
        store = _open_store(args, settings, flag_settings(options, video))
        todo = [p for p in paths if not store.is_done(p)]
        workers = min(args.workers or cpu_count(), max(1, len(todo)))
        start = time.perf_counter()
        done, faces = _analyse(todo, store, options, video, args, workers, failures)
        seconds = time.perf_counter() - start
        _finish(store, paths, todo, done, faces, failures, seconds, args, workers)
        return 1 if failures else 0


def _check_engine(args) -> None:
    """What the run needs is installed and the engine's flags fit, checked before the model
    loads and before anything is written under DIR."""
    if importlib.util.find_spec("pyarrow") is None:
        raise DependencyError('batch writes its rows with pyarrow, which is not installed: '
                              'pip install ".[batch]" in the emotiscope clone')
    if args.engine == "ray" and importlib.util.find_spec("ray") is None:
        raise DependencyError('--engine ray needs Ray Data, which is not installed: '
                              'pip install ".[ray]" in the emotiscope clone')
    if args.address and args.engine != "ray":
        raise ConfigError("--address joins a Ray cluster; give it with --engine ray")


def _open_store(args, settings: dict, flags: dict):
    """The dataset at --out (its lock held), cleared of killed runs' temporary parts; what was
    found damaged or left behind is said on stderr."""
    from ..batchparts import clear_temp_parts
    from ..batchstore import Store

    store = Store(args.out, settings, force=args.force, flags=flags)
    if store.damaged_lines:
        print(f"emotiscope batch: {store.damaged_lines} damaged line(s) in "
              f"{display(store.done_list)} skipped; their files are analysed again",
              file=sys.stderr)
    count, size = clear_temp_parts(store.parts)
    if count:
        print(f"emotiscope batch: {count} temporary part(s) left by killed runs removed from "
              f"{display(store.parts)} ({size / 1e6:.1f} MB)", file=sys.stderr)
    return store


def _analyse(todo, store, options, video, args, workers, failures) -> tuple[int, int]:
    from tqdm import tqdm

    from ..batchengines import local_results, ray_results

    names = {str(p): p for p in todo}
    if args.engine == "ray":
        results = ray_results(list(names), options, video, workers, args.address)
    else:
        results = local_results(list(names), options, video, workers, store.parts)
    done = faces = 0
    start = time.perf_counter()
    with tqdm(total=len(todo), unit="file", file=sys.stderr, disable=None if len(todo) < 100
              else False, dynamic_ncols=True) as bar:
        for result in results:
            bar.update()
            if result.error is not None:
                store.forget(names[result.path])  # its rows from before it changed are stale
                failures.append((display(result.path), result.error))
                continue
            faces += store.add(names[result.path], result)
            done += 1
            bar.set_postfix_str(f"{faces / max(time.perf_counter() - start, 1e-9):.1f} faces/s",
                                refresh=False)
    return done, faces


def _finish(store, paths, todo, done, faces, failures, seconds, args, workers) -> None:
    from ..outputs import write_json

    summary = {"files": len(paths), "skipped": len(paths) - len(todo), "analysed": done,
               "failed": len(failures), "faces": faces, "seconds": round(seconds, 3),
               "files_per_s": round(done / seconds, 2) if seconds > 0 else None,
               "engine": args.engine, "workers": workers,
               "rows": str(store.parts)}
    write_json(store.root / "summary.json", summary)
    write_json(store.root / "failures.json", [{"file": f, "error": e} for f, e in failures])
    print(f"{done} file(s) analysed, {summary['skipped']} already done, {len(failures)} failed; "
          f"{faces} face(s) in {seconds:.1f} s; rows in {display(store.parts)}", file=sys.stderr)
    if failures:
        print(f"emotiscope batch: {len(failures)} input(s) failed (also in "
              f"{display(store.root / 'failures.json')}):", file=sys.stderr)
        for item, message in failures:
            print(f"  {message}" if item in message else f"  {item}: {message}", file=sys.stderr)
