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
from .faceset import FaceSet

log = logging.getLogger(__name__)


def teacher_paths(spec: str | Path) -> list[Path]:
    """'a.onnx,b.pt' -> the teacher files (one or several, averaged into one target)."""
    paths = [Path(p.strip()) for p in str(spec).split(",") if p.strip()]
    if not paths:
        raise ConfigError("--distill needs one or more teacher files, e.g. a.onnx,b/best.pt")
    for path in paths:
        if path.suffix not in (".onnx", ".pt"):
            raise ConfigError(f"--distill {path}: pass an .onnx model of ours or a .pt checkpoint "
                              "from `emotiscope train` (several: comma-separated)")
    return paths


def teacher_targets(spec: str | Path, fs: FaceSet, tta: str,
                    device: str | torch.device = "cpu") -> np.ndarray:
    """N x K float32 probabilities for the faces of `fs`, averaged over the teachers in `spec`
    (comma-separated .onnx models or .pt checkpoints) and over the `tta` views, columns in the
    order of fs.classes (a teacher's other labels are dropped and its rows renormalised).

    An .onnx teacher runs in ONNX Runtime with its calibration temperature; a .pt checkpoint
    runs in torch on `device` (a GPU run computes its teachers' targets there)."""
    from .evaluate import TTA_MODES

    if tta not in TTA_MODES:
        raise ConfigError(f"--distill-tta {tta!r}: use one of {', '.join(TTA_MODES)}")
    paths = teacher_paths(spec)
    total = np.zeros((len(fs), len(fs.classes)), np.float64)
    for path in paths:
        t0 = time.perf_counter()
        print(f"teacher {path.name}: soft targets for {len(fs)} faces ({tta} views)...", file=sys.stderr)
        if path.suffix == ".onnx":
            probs = _onnx_teacher(path, fs, tta, device)
        elif torch.device(device).type == "cpu":
            probs = _checkpoint_via_onnx(path, fs, tta, device)
        else:
            probs = _torch_teacher(path, fs, tta, device)
        agree = float((probs.argmax(1) == fs.labels).mean())
        print(f"teacher targets ready in {time.perf_counter() - t0:.0f} s; teacher agrees with the "
              f"training labels on {agree:.1%}", file=sys.stderr)
        total += probs
    total /= len(paths)
    if len(paths) > 1:
        agree = float((total.argmax(1) == fs.labels).mean())
        print(f"{len(paths)} teachers averaged: agree with the training labels on {agree:.1%}",
              file=sys.stderr)
    return total.astype(np.float32)


TARGETS_FILE = "teacher-targets.npz"
CONSISTENT = "augmented"  # --distill-tta: the student's own augmented view, every step


def _teacher_key(spec: str | Path, tta: str) -> str:
    from ..model_file import file_sha256

    return f"{tta}:" + ",".join(file_sha256(p) for p in teacher_paths(spec))


def run_teacher_targets(spec: str | Path, fs: FaceSet, tta: str, device,
                        run_dir: Path | None) -> tuple[np.ndarray, bool]:
    """(teacher_targets, whether they were read back): read from a resumed run's folder when it
    holds them for the same teacher files (by content), views and faces; computing them takes
    minutes on a CPU."""
    saved = Path(run_dir) / TARGETS_FILE if run_dir is not None else None
    if saved is not None and saved.is_file():
        try:
            with np.load(saved) as z:
                shape = (len(fs), len(fs.classes))
                if str(z["key"]) == _teacher_key(spec, tta) and z["targets"].shape == shape:
                    print(f"teacher targets read from {saved}", file=sys.stderr)
                    return z["targets"], True
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from another version: computed again below
    return teacher_targets(spec, fs, tta, device), False


def save_teacher_targets(run_dir: Path, spec: str | Path, tta: str, targets: np.ndarray) -> None:
    """Keep the targets in the run folder, so `--resume` need not compute them again."""
    from ..outputs import atomic_path

    with atomic_path(Path(run_dir) / TARGETS_FILE) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, targets=targets, key=np.array(_teacher_key(spec, tta)))


def _check_teacher(path: Path, size: int, labels, fs: FaceSet) -> list[int]:
    """Column of each training class in the teacher's output; ConfigError on a mismatch."""
    if size != fs.images.shape[1]:
        raise ConfigError(f"--distill {path} takes {size}px faces, the training data is "
                          f"{fs.images.shape[1]}px; use a teacher trained at the same --size")
    missing = [c for c in fs.classes if c not in labels]
    if missing:
        raise ConfigError(f"--distill {path} has no label for {', '.join(missing)} (it knows "
                          f"{', '.join(labels)}); distil only onto classes the teacher has")
    return [list(labels).index(c) for c in fs.classes]


def _renormalised(probs: np.ndarray, columns: list[int]) -> np.ndarray:
    probs = np.asarray(probs, np.float64)[:, columns]
    return probs / probs.sum(1, keepdims=True)


def _onnx_teacher(path: Path, fs: FaceSet, tta: str, device, shown: Path | None = None) -> np.ndarray:
    from ..classify import EmotionClassifier
    from .evaluate import predict_faces

    teacher = EmotionClassifier(path)
    columns = _check_teacher(shown or path, teacher.info.spec.size, teacher.labels, fs)
    return _renormalised(predict_faces(teacher, fs.images, tta), columns)


def _checkpoint_via_onnx(path: Path, fs: FaceSet, tta: str, device) -> np.ndarray:
    """A .pt teacher on the CPU: exported to a temporary ONNX file (no temperature, as in torch)
    and run in ONNX Runtime, which runs the network faster than torch does in float32 there."""
    import tempfile

    from .checkpoint import load_checkpoint
    from .export import export_checkpoint

    ckpt = load_checkpoint(path, flag="--distill")
    with tempfile.TemporaryDirectory(prefix="emotiscope-teacher-") as tmp:
        onnx_path = Path(tmp) / "teacher.onnx"
        export_checkpoint(ckpt, onnx_path)  # a dict: no report.json, so no temperature
        return _onnx_teacher(onnx_path, fs, tta, device, shown=path)


@torch.no_grad()
def _torch_teacher(path: Path, fs: FaceSet, tta: str, device, batch: int = 1024) -> np.ndarray:
    from ..preprocess import InputSpec, normalize
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .evaluate import tta_views

    ckpt = load_checkpoint(path, flag="--distill")
    spec = InputSpec.from_dict(ckpt["spec"])
    columns = _check_teacher(path, spec.size, ckpt["labels"], fs)
    model = model_from_checkpoint(ckpt, path).to(device)
    out = []
    for i in range(0, len(fs), batch):
        views = tta_views(fs.images[i:i + batch], tta)
        probs = torch.zeros((), device=device)  # 0 + p is p exactly
        for view in views:
            x = normalize(torch.from_numpy(view).to(device).float()[:, None], spec.mean, spec.std)
            probs = probs + torch.softmax(model(x).float(), 1)
        out.append((probs / len(views)).cpu().numpy())
    return _renormalised(np.concatenate(out), columns)


class FixedTargets:
    """The teachers' targets computed before training (teacher_targets), looked up by face."""

    def __init__(self, targets: torch.Tensor) -> None:
        self.targets = targets

    def __call__(self, raw: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return self.targets[idx]


class ConsistentTeacher:
    """`--distill-tta augmented`: the teachers judge each training batch as the student sees it,
    augmentation included, every step (a consistent teacher: no target from a view the student
    never saw). A .pt teacher runs in torch on the training device (bf16 with `amp`), and so does
    an .onnx one whose network torch can rebuild (checkpoint.model_from_onnx), with its
    temperature; another .onnx (an ensemble) runs in ONNX Runtime."""

    def __init__(self, spec: str | Path, fs: FaceSet, device, amp: bool) -> None:
        self.device, self.amp = torch.device(device), amp
        # (torch network or None, its input, temperature, ONNX Runtime's model or None, columns)
        self.members = [self._member(path, fs) for path in teacher_paths(spec)]

    def _member(self, path: Path, fs: FaceSet) -> tuple:
        from ..classify import EmotionClassifier
        from ..preprocess import InputSpec
        from .checkpoint import load_checkpoint, model_from_checkpoint, model_from_onnx

        onnx: EmotionClassifier | None = None
        net: torch.nn.Module | None
        if path.suffix == ".pt":
            ckpt = load_checkpoint(path, flag="--distill")
            net_spec, labels, temperature = InputSpec.from_dict(ckpt["spec"]), ckpt["labels"], 1.0
            net = model_from_checkpoint(ckpt, path)
        else:
            onnx = EmotionClassifier(path)
            net_spec, labels, temperature = onnx.info.spec, onnx.labels, onnx.info.temperature
            net = model_from_onnx(onnx)
        columns = _check_teacher(path, net_spec.size, labels, fs)
        print(f"teacher {path.name}: judges every augmented batch in "
              f"{'torch' if net is not None else 'ONNX Runtime'}", file=sys.stderr)
        if net is None:
            return None, net_spec, temperature, onnx, columns
        net = net.to(self.device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return net.eval().requires_grad_(False), net_spec, temperature, None, columns

    @torch.no_grad()
    def __call__(self, raw: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """N x K probabilities (the training classes' columns) for N x 1 x S x S faces in 0..255
        (`idx`, the faces' places in the training set, is not needed: they are judged as seen)."""
        from ..preprocess import normalize
        from .evaluate import predict_faces

        total = torch.zeros((), device=raw.device)
        for net, net_spec, temperature, onnx, columns in self.members:
            if net is None:  # ONNX Runtime takes uint8 faces, as at inference
                faces = raw[:, 0].round().clamp(0, 255).to(torch.uint8).cpu().numpy()
                probs = torch.from_numpy(predict_faces(onnx, faces)).to(raw.device)
            else:
                x = normalize(raw, net_spec.mean, net_spec.std).contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    probs = torch.softmax(net(x).float() / temperature, 1)
            probs = probs[:, columns].float()
            total = total + probs / probs.sum(1, keepdim=True)
        return total / len(self.members)


def make_teacher(spec: str | None, tta: str, fs: FaceSet, device, amp: bool,
                 run_dir: Path | None) -> tuple[ConsistentTeacher | FixedTargets | None, np.ndarray | None]:
    """(the teacher of a `--distill spec` run, or None without one; targets to save). With
    `--distill-tta augmented` it judges every augmented batch; otherwise its soft targets are
    computed once (or read back from a resumed run's `run_dir`), and those computed now are
    returned too, for the caller to keep in the run folder once it exists."""
    if not spec:
        return None, None
    if tta == CONSISTENT:
        return ConsistentTeacher(spec, fs, device, amp), None
    targets, kept = run_teacher_targets(spec, fs, tta, device, run_dir)
    return FixedTargets(torch.from_numpy(targets).to(device)), None if kept else targets


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
