"""The training loop: data -> model -> epochs with validation -> best checkpoint -> ONNX.

Every run writes into a new folder: config.json, history.json, metrics.csv, curves.png, best.pt,
last.pt, model.onnx, confusion.png and report.json. Checkpoints and the per-epoch logs are written
atomically after each epoch; `runs.resume(run_dir)` continues a run that was killed, or extends one."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..outputs import check_writable_folder, write_json
from ..preprocess import InputSpec, normalize
from . import distributed, export, plots
from .augment import augment_batch
from .checkpoint import check_same_data, data_fingerprint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distill import WeightAverage, make_teacher, save_teacher_targets, soft_cross_entropy
from .duplicates import near_duplicates
from .evaluate import classification_report, dup_free_text, duplicate_free, holdout_report
from .faceset import FaceSet
from .optim import HEAD_PREFIX, bf16_supported, class_weights, jump_schedule, make_optimizer, pick_device
from .prepare import absolute_paths, build_initial_model, new_run_dir, prepare_data
from .runlog import RunLog, check_tensorboard, describe_run

log = logging.getLogger(__name__)


class Trainer:
    """Holds the model, optimiser, data and state of one run; `fit()` runs the remaining epochs."""

    def __init__(self, cfg: TrainConfig, command: str, run_dir: Path | None = None,
                 resumed: dict | None = None) -> None:
        """`run_dir`, `resumed`: the folder and last.pt of a run being resumed (on the same data); None
        makes a new one, last, once data and model are ready: a bad option leaves no empty folder."""
        self.cfg, self.command = cfg, command
        self.rank, self.world = distributed.rank_world()
        self.main = self.rank == 0  # only rank 0 validates, logs and writes files
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.train_set, self.val_set, self.val_source = prepare_data(cfg)
        self.data = data_fingerprint(self.train_set, self.val_set)
        if resumed is not None:  # the run must go on with the data it started on
            check_same_data(resumed, self.data, Path(run_dir or "."))
        imgs = self.train_set.images
        # twins of training faces, for the duplicate-free accuracy; only rank 0 validates
        self.val_twin = (near_duplicates(self.val_set.images, imgs) if self.main
                         else np.zeros(len(self.val_set), bool))
        self.model, self.model_args, self.init_source = build_initial_model(cfg, self.train_set.classes)
        self.spec = self._input_spec(imgs)
        self.use_amp = cfg.amp and bf16_supported(self.device)
        # channels_last: oneDNN's and cuDNN's fast convolution layout (2.2x with bf16 on AVX-512)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.steps_per_epoch = math.ceil(len(self.train_set) / cfg.batch_size)
        self.opt, self.sched = make_optimizer(self.model, cfg, cfg.epochs * self.steps_per_epoch)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.epoch, self.best_acc, self.best_epoch, self.patience_from = 0, -1.0, 0, 0
        self.history: list[dict] = []
        self.x_train = torch.from_numpy(imgs).to(self.device)
        self.y_train = torch.from_numpy(self.train_set.labels).to(self.device)
        self.loss_weight = (class_weights(self.train_set.labels, len(self.train_set.classes), self.device)
                            if cfg.class_weights else None)
        # the teacher's soft targets: judged on every augmented batch, or computed once before
        self.teacher, new_targets = make_teacher(cfg.distill, cfg.distill_tta, self.train_set, self.device,
                                                 self.use_amp, run_dir)
        self.average = WeightAverage(self.model, cfg.ema) if cfg.ema else None
        # the folder name uses the effective arch (--init-from sets it)
        if run_dir is None and self.main:
            run_dir = new_run_dir(Path(cfg.out), cfg.name or cfg.arch)
        self.run_dir: Path = distributed.share(run_dir)
        if cfg.distill and new_targets is not None and self.main:  # a resumed run keeps its file
            save_teacher_targets(self.run_dir, cfg.distill, cfg.distill_tta, new_targets)
        self.log = RunLog(self.run_dir, cfg.tensorboard and self.main, cfg.quiet or not self.main)
        self.net = distributed.wrap(self.model, self.device)  # what trains: DDP with --nproc

    def _input_spec(self, imgs: np.ndarray) -> InputSpec:
        """A fine-tune keeps its source's normalisation; a fresh model takes the data's."""
        kept = self.init_source.spec if self.init_source else None
        mean, std = (kept.mean, kept.std) if kept else (imgs.mean() / 255, imgs.std() / 255)
        return InputSpec(size=self.cfg.size, channels=1, mean=round(float(mean), 4),
                         std=round(float(std), 4), margin=self.cfg.crop_margin)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights validated, checkpointed as "model" and exported: the average when --ema."""
        return self.average.model if self.average else self.model

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        loss = F.cross_entropy(logits, y, weight=self.loss_weight, label_smoothing=self.cfg.label_smoothing)
        w = self.cfg.distill_weight
        return loss if soft is None else (1 - w) * loss + w * soft_cross_entropy(logits, soft)

    def _raw(self, x_uint8: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """N x 1 x S x S faces in 0..255, augmented with `gen` when given."""
        x = x_uint8.float()[:, None]
        return x if gen is None else augment_batch(x, self.cfg.augment, gen)

    def _normalized(self, raw: torch.Tensor) -> torch.Tensor:
        return normalize(raw, self.spec.mean, self.spec.std).contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze:  # a frozen backbone keeps its batch-norm statistics too; the
            for name, module in self.model.named_children():  # head's dropout stays on
                if not HEAD_PREFIX.startswith(name + ".") and not isinstance(module, torch.nn.Dropout):
                    module.eval()

    def train_epoch(self, bar) -> tuple[float, float, float]:
        """(training objective, accuracy, plain cross-entropy) over one epoch's batches. The
        objective has label smoothing, class weights and distillation in it; the plain
        cross-entropy has none, so it compares with the validation loss."""
        self._train_mode()
        order = torch.randperm(len(self.y_train), generator=self.gen, device=self.device)
        gen = distributed.reseed(self.cfg.seed, self.epoch, self.device) or self.gen  # own with --nproc
        total_loss = total_ce = 0.0
        correct = seen = 0
        for i in range(self.steps_per_epoch):
            idx = distributed.shard(order[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size])
            raw, y = self._raw(self.x_train[idx], gen), self.y_train[idx]
            with self._autocast():
                logits = self.net(self._normalized(raw))
            loss = self._loss(logits.float(), y, self.teacher(raw, idx) if self.teacher else None)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            if self.average:
                self.average.update(self.model)
            total_loss += loss.item() * len(y)
            total_ce += F.cross_entropy(logits.detach().float(), y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        loss_sum, ce_sum, right, count = distributed.total(  # over all ranks
            [total_loss, total_ce, correct, seen], self.device)
        return loss_sum / count, right / count, ce_sum / count

    @torch.no_grad()
    def predict(self, fs: FaceSet, batch: int = 512) -> np.ndarray:
        """Logits for a FaceSet (no augmentation, float32)."""
        model = self.eval_model.eval()
        out = []
        for i in range(0, len(fs), batch):
            x = self._normalized(self._raw(torch.from_numpy(fs.images[i:i + batch]).to(self.device)))
            out.append(model(x).float().cpu())  # float32, as the exported model computes
        return torch.cat(out).numpy() if out else np.zeros((0, len(fs.classes)), np.float32)

    def validate(self) -> dict:
        fs, logits = self.val_set, self.predict(self.val_set)
        pred = logits.argmax(1)
        loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(fs.labels)).item()
        report = classification_report(fs.labels, pred, fs.classes)
        row = {"val_loss": loss, "val_acc": report["accuracy"], "val_macro_f1": report["macro_f1"]}
        if self.val_twin.any():  # the accuracy a new face can expect; None when every face has a twin
            row["val_acc_dup_free"] = duplicate_free(fs.labels, pred, fs.classes, self.val_twin)["accuracy"]
        return row

    def checkpoint(self) -> dict:
        return {"model": self.eval_model.state_dict(), "optimizer": self.opt.state_dict(),
                "live": self.model.state_dict() if self.average else None,
                "average": self.average.state_dict() if self.average else None,
                "scheduler": self.sched.state_dict(), "gen": self.gen.get_state(),
                "rng": torch.get_rng_state(),  # dropout draws from the global generator
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "epoch": self.epoch, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "patience_from": self.patience_from, "data": self.data,
                "history": self.history, "config": self.cfg.to_dict(), "arch": self.cfg.arch,
                "model_args": self.model_args, "labels": list(self.train_set.classes),
                "spec": self.spec.to_dict(), "command": self.command}

    def load_state(self, ckpt: dict, reschedule: bool = False) -> None:
        """Restore a checkpoint; `reschedule`: the run's --epochs changed, so the learning-rate
        schedule built for the new total is moved to the current step instead of restored."""
        self.model.load_state_dict(ckpt.get("live") or ckpt["model"])
        if self.average and ckpt.get("average"):
            self.average.load_state_dict(ckpt["average"])
        self.spec = InputSpec.from_dict(ckpt["spec"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if reschedule:
            jump_schedule(self.sched, self.opt, ckpt["epoch"] * self.steps_per_epoch)
        else:
            self.sched.load_state_dict(ckpt["scheduler"])
        try:
            self.gen.set_state(ckpt["gen"])
        except RuntimeError:  # --device changed between CPU and CUDA: another random stream
            log.warning("the augmentation random state cannot move to %s; continuing with a new one",
                        self.device)
        if "rng" in ckpt:  # so a resumed run repeats the uninterrupted one exactly
            torch.set_rng_state(ckpt["rng"])
        if ckpt.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        self.epoch, self.history = ckpt["epoch"], ckpt["history"]
        self.best_acc, self.best_epoch = ckpt["best_acc"], ckpt["best_epoch"]
        self.patience_from = ckpt["epoch"] if reschedule else ckpt.get("patience_from", 0)

    def fit(self, on_epoch_end=None) -> None:
        """Run epochs from self.epoch to cfg.epochs, keeping best.pt, last.pt and the logs up to date."""
        cfg, start, first = self.cfg, time.perf_counter(), self.epoch
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            with self.log.bar(self.steps_per_epoch, f"epoch {self.epoch + 1}/{cfg.epochs}") as bar:
                train_loss, train_acc, train_ce = self.train_epoch(bar)
            self.epoch += 1
            if not self.main:  # rank 0 validates, writes, and says whether to stop
                if distributed.share(None):
                    break
                continue
            row = {"epoch": self.epoch, "lr": self.opt.param_groups[-1]["lr"],
                   "train_loss": round(train_loss, 4), "train_ce": round(train_ce, 4),
                   "train_acc": round(train_acc, 4),
                   **{k: v if v is None else round(v, 4) for k, v in self.validate().items()},
                   "seconds": round(time.perf_counter() - t0, 1)}
            self.history.append(row)
            improved = row["val_acc"] > self.best_acc
            if improved:
                self.best_acc, self.best_epoch = row["val_acc"], self.epoch
            state = self.checkpoint()
            if improved:
                save_checkpoint(state, self.run_dir / "best.pt")
            save_checkpoint(state, self.run_dir / "last.pt")
            self.log.record(self.history)
            eta = (time.perf_counter() - start) / (self.epoch - first) * (cfg.epochs - self.epoch)
            self.log.say(f"epoch {self.epoch}/{cfg.epochs}  loss {train_loss:.3f}  ce {train_ce:.3f}  "
                         f"acc {train_acc:.3f}  val_loss {row['val_loss']:.3f}  "
                         f"val_acc {row['val_acc']:.4f}{dup_free_text(row)}  "
                         f"best {self.best_acc:.4f}@{self.best_epoch}  "
                         f"eta {eta / 60:.1f} min")
            if on_epoch_end is not None:
                on_epoch_end(self)
            stop = cfg.stops_early(self.epoch, self.best_epoch, self.patience_from)
            if stop:
                self.log.say(f"early stop: no gain for {cfg.patience} epochs")
            if distributed.share(stop):
                break

    def finish(self) -> dict:
        """Load the best weights, write curves, confusion matrix, report and the ONNX model."""
        best = load_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["model"])
        self.average = None  # best["model"] already holds the averaged weights when --ema
        report = holdout_report(self.predict(self.val_set), self.val_set, self.val_twin, self.val_source)
        report["best_epoch"], report["epochs_run"] = self.best_epoch, self.epoch
        self.log.record(self.history)
        self.log.close()
        plots.plot_confusion(report["confusion"], self.val_set.classes, self.run_dir / "confusion.png",
                             f"Validation, best epoch {self.best_epoch}: {report['accuracy']:.1%}")
        # the metrics and temperature of the report belong to best.pt's epoch: export stamps them
        report["export"] = export.export_checkpoint(
            best, self.run_dir / "model.onnx", report=report, command=self.command,
            config=self.cfg.to_dict(), epochs_run=self.epoch, train_counts=self.train_set.counts())
        write_json(self.run_dir / "report.json", report)
        return report


def train(cfg: TrainConfig, command: str = "", on_epoch_end=None) -> Path:
    """Start a new run; returns its folder. With cfg.nproc > 1 (or under torchrun) it trains
    data-parallel (training/distributed.py)."""
    cfg.validate()
    if world := distributed.join_torchrun():
        cfg.nproc = world  # recorded, so --resume runs with as many processes
    elif cfg.nproc > 1:
        return distributed.launch(cfg.nproc, cfg.threads, train, cfg, command)
    check_writable_folder(cfg.out, "--out")
    if cfg.tensorboard:
        check_tensorboard()
    absolute_paths(cfg)  # --resume from anywhere
    trainer = Trainer(cfg, command)
    if trainer.main:
        # written after the model is built: the effective config (--init-from sets arch and model_args)
        write_json(trainer.run_dir / "config.json", cfg.to_dict())
        describe_run(trainer)
    trainer.fit(on_epoch_end)
    if trainer.main:
        trainer.finish()
    return trainer.run_dir
