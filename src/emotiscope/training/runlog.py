"""What a run tells as it goes: progress on stderr, and files updated after every epoch.

After each epoch the run folder gets history.json (all metrics per epoch), metrics.csv (the same
as a table) and curves.png; with `--tensorboard`, TensorBoard event files under tensorboard/.
On a terminal each epoch shows a progress bar; when stderr is a file or a pipe (a log, a job
scheduler) only one line per epoch is written, and `--quiet` writes none.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from ..errors import ConfigError
from ..outputs import atomic_path, write_json
from . import plots

log = logging.getLogger("emotiscope.training")


def check_tensorboard() -> None:
    """ConfigError (one line) when --tensorboard cannot work here."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard "
                          "(or drop --tensorboard: history.json and metrics.csv are always "
                          "written)") from None


class _NoBar:
    """Stands in for a tqdm bar when none is shown."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = False, quiet: bool = False) -> None:
        self.run_dir, self.quiet = Path(run_dir), quiet
        self.bars = not quiet and sys.stderr.isatty()
        self.writer = None
        if tensorboard:
            check_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def say(self, message: str) -> None:
        """One line on stderr unless --quiet (between progress bars when they are shown)."""
        if self.quiet:
            return
        if self.bars:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def bar(self, total: int, desc: str):
        """A tqdm bar on a terminal; otherwise a silent stand-in (no `\\r` updates in logs)."""
        if not self.bars:
            return nullcontext(_NoBar())
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)

    def record(self, history: list[dict]) -> None:
        """Rewrite history.json, metrics.csv and curves.png; send the last epoch to TensorBoard."""
        write_json(self.run_dir / "history.json", history)
        write_csv(history, self.run_dir / "metrics.csv")
        plots.plot_curves(history, self.run_dir / "curves.png")
        if self.writer is not None and history:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_csv(history: list[dict], path: Path) -> None:
    """The per-epoch rows as CSV, columns in first-seen order (written atomically)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue(), encoding="utf-8")


def describe_run(trainer) -> None:
    """The first line of a new run (architecture, cost, device, data), and with --init-from a
    warning when the source model has most likely learnt the validation faces already."""
    from . import distributed
    from .models import count_macs
    from .prepare import init_knew_validation

    ts, vs, cfg = trainer.train_set, trainer.val_set, trainer.cfg
    macs = count_macs(trainer.model.cpu(), trainer.spec.size, trainer.spec.channels)
    source = trainer.init_source
    knew = init_knew_validation(source, trainer.model, vs, trainer.spec) if source else None
    trainer.model.to(trainer.device)
    where = f"{trainer.device}" if trainer.world == 1 else \
        f"{trainer.world} processes ({distributed.backend()}, {trainer.device})"
    trainer.log.say(f"run {trainer.run_dir}: {cfg.arch} ({macs / 1e6:.1f} M MACs/face) on "
                    f"{where}; train {len(ts)} {ts.counts()}; val {len(vs)} ({trainer.val_source})")
    if knew:
        log.warning(knew)
