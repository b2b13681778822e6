"""Knowledge distillation and weight averaging.

`teacher_targets` runs a teacher model of ours (an ONNX file) once over the training faces,
averaging its probabilities over test-time-augmentation views (multi-crop by default), so the
student can learn the teacher's softer, view-averaged judgement at no cost per training step.
`WeightAverage` keeps an exponential moving average of the weights (and batch-norm statistics)
that is validated, checkpointed and exported in place of the raw weights.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import ConfigError
from .data import FaceSet

log = logging.getLogger(__name__)


def teacher_targets(path: str | Path, fs: FaceSet, tta: str) -> np.ndarray:
    """N x K float32 probabilities of the teacher for the faces of `fs`, columns in the order of
    fs.classes (the teacher's other labels are dropped and rows renormalised)."""
    from ..classify import EmotionClassifier
    from .evaluate import TTA_MODES, predict_faces

    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"--distill {path}: pass an .onnx model of ours; export a checkpoint first "
                          "with `emotiscope export RUN/best.pt -o teacher.onnx`")
    if tta not in TTA_MODES:
        raise ConfigError(f"--distill-tta {tta!r}: use one of {', '.join(TTA_MODES)}")
    teacher = EmotionClassifier(path)
    size = fs.images.shape[1]
    if teacher.info.spec.size != size:
        raise ConfigError(f"--distill {path} takes {teacher.info.spec.size}px faces, the training data "
                          f"is {size}px; use a teacher trained at the same --size")
    missing = [c for c in fs.classes if c not in teacher.labels]
    if missing:
        raise ConfigError(f"--distill {path} has no label for {', '.join(missing)} (it knows "
                          f"{', '.join(teacher.labels)}); distil only onto classes the teacher has")
    t0 = time.perf_counter()
    print(f"teacher {path.name}: soft targets for {len(fs)} faces ({tta} views)...", file=sys.stderr)
    probs = predict_faces(teacher, fs.images, tta)[:, [teacher.labels.index(c) for c in fs.classes]]
    probs /= probs.sum(1, keepdims=True)
    agree = float((probs.argmax(1) == fs.labels).mean())
    print(f"teacher targets ready in {time.perf_counter() - t0:.0f} s; teacher agrees with the "
          f"training labels on {agree:.1%}", file=sys.stderr)
    return probs.astype(np.float32)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits against probability targets."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


class WeightAverage:
    """Exponential moving average of a model's parameters and buffers (decay per step)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def model(self) -> torch.nn.Module:
        return self.avg.module

    def update(self, model: torch.nn.Module) -> None:
        self.avg.update_parameters(model)

    def state_dict(self) -> dict:
        return self.avg.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.avg.load_state_dict(state)
