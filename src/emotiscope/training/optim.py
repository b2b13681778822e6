"""Device, optimiser and learning-rate schedule of a run, and the schedule of an extended run."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from .config import TrainConfig

HEAD_PREFIX = "classifier."  # the output layer of every architecture; the rest is the backbone


def pick_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N; anything else (mps, gpu, tpu...) is a one-line ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is visible; use --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) visible")
    return torch.device(name)


def class_weights(labels, classes: int, device: torch.device) -> torch.Tensor:
    """--class-weights: the loss weight of each class, the square root of its inverse frequency,
    mean 1."""
    counts = np.bincount(labels, minlength=classes)
    w = (counts.sum() / np.maximum(counts, 1) / len(counts)) ** 0.5
    return torch.tensor(w / w.mean(), dtype=torch.float32, device=device)


def bf16_supported(device: torch.device) -> bool:
    """bfloat16 autocast pays off on CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """Weight-decayed and not-decayed parameters; with --backbone-lr-scale or --freeze the
    backbone (everything but the classifier head) gets its own, slower or absent, groups."""
    named = list(model.named_parameters())
    if cfg.freeze == "features":
        for name, p in named:
            p.requires_grad_(name.startswith(HEAD_PREFIX))
        named = [(n, p) for n, p in named if p.requires_grad]
    split = cfg.backbone_lr_scale != 1.0 and cfg.freeze != "features"
    parts = ([[(n, p) for n, p in named if not n.startswith(HEAD_PREFIX)],
              [(n, p) for n, p in named if n.startswith(HEAD_PREFIX)]] if split else [named])
    scales = [cfg.backbone_lr_scale, 1.0] if split else [1.0]
    groups = []
    for part, scale in zip(parts, scales, strict=True):
        groups.append({"params": [p for _, p in part if p.ndim > 1], "weight_decay": cfg.weight_decay,
                       "lr": cfg.lr * scale})
        groups.append({"params": [p for _, p in part if p.ndim <= 1], "weight_decay": 0.0,
                       "lr": cfg.lr * scale})
    return groups


def make_optimizer(model, cfg: TrainConfig, steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    groups = param_groups(model, cfg)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups],
                                                    total_steps=steps, pct_start=0.15, div_factor=20,
                                                    final_div_factor=200)
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def jump_schedule(sched, opt, step: int) -> None:
    """Put a freshly built schedule (for a new total of steps) at `step`, setting the optimiser's
    learning rates (and one-cycle momentum) to the schedule's values there. Used when a resumed
    run changes --epochs: the run continues as if it had been started with the new total."""
    sched.last_epoch = step - 1
    sched._step_count = step + 1  # steps were taken: no "scheduler before optimizer" warning
    if isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
        # its step() is recursive in the current lr; set the closed form directly
        sched.last_epoch = step
        for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
            cosine = (1 + math.cos(math.pi * step / sched.T_max)) / 2
            group["lr"] = sched.eta_min + (base - sched.eta_min) * cosine
        sched._last_lr = [g["lr"] for g in opt.param_groups]
    else:
        sched.step()
