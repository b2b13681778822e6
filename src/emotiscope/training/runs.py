"""Runs after they started: resume or extend one (`train --resume`), compare several
(`emotiscope runs compare`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..outputs import display, write_json
from . import distributed
from .checkpoint import RESUME_KEYS, load_checkpoint
from .config import RESUMABLE, TrainConfig, flag_name
from .loop import Trainer
from .runlog import RunLog, check_tensorboard


def resume(run_dir: Path, changes: dict | None = None, on_epoch_end=None) -> Path:
    """Continue a killed run from its last.pt (same folder, same config), or extend a finished
    one with `changes={"epochs": N}`. Only the RESUMABLE fields may change. A run that finished
    and wrote model.onnx, with no more epochs asked for, is left as it is; one killed while writing
    its results only writes them."""
    run_dir, changes = Path(run_dir), dict(changes or {})
    ckpt, cfg, planned = _load_run(run_dir, changes)
    epoch, best = ckpt["epoch"], ckpt["best_epoch"]
    stopped = cfg.stops_early(epoch, best, ckpt.get("patience_from", 0)) and cfg.epochs == planned
    done = epoch >= cfg.epochs or stopped
    if done and (run_dir / "model.onnx").is_file():
        # the answer to the command, not progress: said also for a run trained with --quiet
        RunLog(run_dir, quiet=False).say(
            f"{run_dir} already finished at epoch {epoch}/{cfg.epochs} and wrote model.onnx; "
            "nothing to do: pass --epochs N (more than that) to train more")
        return run_dir
    _check_data_is_there(run_dir, cfg)
    if cfg.tensorboard:
        check_tensorboard()
    if cfg.nproc > 1 and not distributed.join_torchrun():
        return distributed.launch(cfg.nproc, cfg.threads, resume, run_dir, changes)
    trainer = Trainer(replace(cfg, init_from=None), ckpt.get("command", ""), run_dir, ckpt)  # weights: ckpt
    trainer.cfg.init_from = cfg.init_from
    trainer.load_state(ckpt, reschedule=cfg.epochs != planned)
    if changes and trainer.main:
        write_json(run_dir / "config.json", cfg.to_dict())
    if not done:
        trainer.log.say(f"resuming {run_dir} at epoch {trainer.epoch + 1}/{cfg.epochs}"
            + (f" (was {planned}; learning-rate schedule rebuilt)" if cfg.epochs != planned else ""))
        trainer.fit(on_epoch_end)
    if trainer.main:
        trainer.finish()
    return run_dir


def _check_data_is_there(run_dir: Path, cfg: TrainConfig) -> None:
    """A one-line ConfigError when the data the run trained on (DATA, --val) was moved or deleted:
    --resume takes no DATA, so "pass fer2013.csv or a folder" would not help."""
    for what, path in (("data", cfg.data), ("--val data", cfg.val)):
        if path and not Path(path).exists():
            where = "is gone; put it back there" if Path(path).is_absolute() else (
                f"is not under {display(Path.cwd())} (a path relative to the folder train ran "
                "in): run --resume from that folder, or put it back there")
            raise ConfigError(f"--resume {display(run_dir)}: its {what} {path} {where} (a run resumes "
                              f"on its own data), or start a new run on the data where it is now with "
                              f"--init-from {display(run_dir / 'last.pt')}")


def _load_run(run_dir: Path, changes: dict) -> tuple[dict, TrainConfig, int]:
    """(last.pt of the run in `run_dir`, its config with `changes`, the epochs it planned);
    ConfigError when there is no last.pt, a change is not RESUMABLE, the config cannot be read,
    or --epochs is fewer than the epochs already trained."""
    last = run_dir / "last.pt"
    if not last.is_file():
        raise ConfigError(f"--resume {run_dir}: no last.pt there; pass a run folder written by "
                          "`emotiscope train` that finished at least one epoch")
    refused = [k for k in changes if k not in RESUMABLE]
    if refused:
        allowed = ", ".join(flag_name(k) for k in RESUMABLE)
        raise ConfigError(f"--resume keeps the run's configuration; {flag_name(refused[0])} cannot "
                          f"change (allowed: {allowed}); to change it start a new run with "
                          f"--init-from {run_dir / 'last.pt'}")
    ckpt = load_checkpoint(last, RESUME_KEYS, "--resume")
    try:
        # a run from before --faces read every image as a crop: it resumes on the same data
        cfg = TrainConfig.from_dict({"faces": "crops", **ckpt["config"]})
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"--resume {last}: its config cannot be read ({exc}); start a new run") from None
    planned, epoch = cfg.epochs, ckpt["epoch"]
    cfg = replace(cfg, **changes).validate(new_run=False)  # as it was started, if allowed then
    if cfg.epochs < epoch:
        raise ConfigError(f"--resume {display(run_dir)}: --epochs {cfg.epochs} is fewer than the {epoch} "
                          f"epochs it already trained; pass --epochs {epoch + 1} or more to extend it, or "
                          "leave --epochs out")
    return ckpt, cfg, planned
