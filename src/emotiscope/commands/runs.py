"""`emotiscope runs compare RUN...`: a table of training runs side by side (no torch needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..outputs import display


def register(sub) -> None:
    p = sub.add_parser("runs", help="look at training runs: compare several side by side")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    c = rsub.add_parser("compare", help="print best validation accuracy, epochs, lr and speed per run")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by `emotiscope train`")
    c.add_argument("--json", action="store_true", help="print the rows as JSON")
    c.set_defaults(func=run_compare)


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {display(path)} ({exc}); is it a run folder?") from None


def _damaged(path: Path, what: str) -> None:
    raise InputError(f"cannot read {display(path)} ({what}); the run folder is damaged or not "
                     "written by `emotiscope train`: leave it out of the comparison")


def summary(run_dir: Path) -> dict:
    """One run's row: best val accuracy and its epoch, lr, optimiser, arch, epochs, s/epoch.
    A run still in its first epoch has a config.json but no history.json yet: 0 epochs."""
    run_dir = Path(run_dir)
    config, history = _read(run_dir / "config.json"), _read(run_dir / "history.json")
    if config is None:
        if run_dir.is_dir() and any(run_dir.glob("*/config.json")):  # train's --out, holding runs
            raise InputError(f"{display(run_dir)} is not a run folder but holds runs; pass them: "
                             f"emotiscope runs compare {display(run_dir / '*')}")
        raise InputError(f"{display(run_dir)} is not a run folder (no config.json); "
                         "pass folders written by `emotiscope train`")
    if not isinstance(config, dict):
        _damaged(run_dir / "config.json", "not a JSON object of settings")
    history = [] if history is None else history  # none yet during the first epoch
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        _damaged(run_dir / "history.json", "not a list of epochs")
    best: dict = max(history, key=lambda r: r.get("val_acc", -1), default={})
    seconds = [r["seconds"] for r in history if "seconds" in r]
    return {"run": display(run_dir), "best_val_acc": best.get("val_acc"), "best_epoch": best.get("epoch"),
            "lr": config.get("lr"), "optimizer": config.get("optimizer"), "arch": config.get("arch"),
            "epochs_run": len(history), "epochs": config.get("epochs"),
            "seconds_per_epoch": round(sum(seconds) / len(seconds), 1) if seconds else None}


def run_compare(args: argparse.Namespace) -> int:
    rows = [summary(Path(r)) for r in args.runs]
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max(len(r["run"]) for r in rows)
    print(f"{'run':<{width}}  {'best val acc':>12} {'epoch':>5} {'lr':>8} {'optimizer':>9} "
          f"{'arch':>8} {'epochs':>7} {'s/epoch':>8}")
    for r in rows:
        acc = f"{r['best_val_acc']:.4f}" if r["best_val_acc"] is not None else "-"
        print(f"{r['run']:<{width}}  {acc:>12} {r['best_epoch'] or '-':>5} {r['lr']:>8g} "
              f"{r['optimizer']:>9} {r['arch']:>8} {r['epochs_run']:>3}/{r['epochs']:<3} "
              f"{r['seconds_per_epoch'] if r['seconds_per_epoch'] is not None else '-':>8}")
    return 0
