"""Training checkpoints (.pt): the one place that writes and reads them.

Reading never runs code from the file: `torch.load(weights_only=True)` rebuilds only tensors and
plain Python data, which is all our checkpoints hold. A pickle that asks for anything else (a
crafted file whose loading would execute a payload) is refused, like garbage, an empty file or
someone else's checkpoint, with a one-line ModelError.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, ModelError
from ..outputs import atomic_path, display

# What `emotiscope export` and `train --init-from` need; `train --resume` needs RESUME_KEYS too.
MODEL_KEYS = ("model", "arch", "labels", "spec")
RESUME_KEYS = (*MODEL_KEYS, "config", "optimizer", "scheduler", "gen", "epoch", "history",
               "best_acc", "best_epoch")
HINT = "pass best.pt or last.pt from a run folder written by `emotiscope train`"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` atomically (a killed run keeps the previous checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, need: tuple[str, ...] = MODEL_KEYS, flag: str = "") -> dict:
    """A checkpoint dict with at least the keys in `need`; ModelError (one line) for anything
    else. `flag` names the option the path came from, for the message."""
    path = Path(path)
    what = f"{flag} {display(path)}" if flag else display(path)
    if path.is_dir():
        raise folder_given(what, path)
    if not path.is_file():
        raise ModelError(f"{what} does not exist or is not a file; {HINT}")
    try:
        with warnings.catch_warnings():  # the weights-only unpickler warns on foreign pickles
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, OSError...
        raise ModelError(f"{what} is not an emotiscope checkpoint ({_reason(exc)}); {HINT}") from None
    if not isinstance(ckpt, dict):
        raise ModelError(f"{what} holds a {type(ckpt).__name__}, not an emotiscope checkpoint; {HINT}")
    missing = [k for k in need if k not in ckpt]
    if missing:
        raise ModelError(f"{what} is not an emotiscope checkpoint (no {', '.join(missing)}); {HINT}")
    return ckpt


def folder_given(what: str, path: Path) -> ModelError:
    """The error for a run folder given where a checkpoint or model file is needed."""
    return ModelError(f"{what} is a folder; pass {display(path / 'best.pt')} (or "
                      f"{display(path / 'model.onnx')})")


def _reason(exc: Exception) -> str:
    text = str(exc)
    # torch words it "unsupported GLOBAL posix.system ..." or "Unsupported global: GLOBAL exec ..."
    unsafe = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)
    if unsafe:
        return f"it asks to run {unsafe.group(1)} when loaded, which is refused for safety"
    if isinstance(exc, EOFError) or not text.strip():
        return "the file is empty or truncated"
    if "Weights only load failed" in text:
        return "not a torch checkpoint, or one holding more than tensors and plain data"
    if "PytorchStreamReader" in text:  # a cut or damaged zip ("failed finding central directory")
        return "truncated or not a PyTorch checkpoint"
    first = text.strip().splitlines()[0].split(". ")[0].rstrip(".")  # torch's first sentence, whole
    return first if len(first) <= 160 else first[:160].rsplit(" ", 1)[0] + " ..."


def model_from_checkpoint(ckpt: dict, source: str | Path = "the checkpoint") -> torch.nn.Module:
    """The network in `ckpt` (from load_checkpoint), rebuilt from its arch and model_args with
    its weights loaded (on the CPU, in eval mode); ModelError when the weights do not fit."""
    from ..preprocess import InputSpec
    from .models import build_model

    arch, labels = ckpt["arch"], ckpt["labels"]
    try:
        spec = InputSpec.from_dict(ckpt["spec"])
        model = build_model(arch, len(labels), spec.channels, **ckpt.get("model_args", {}))
        model.load_state_dict(ckpt["model"])
    except (ConfigError, KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{display(Path(source))} holds no weights that fit its architecture "
                         f"{arch!r} ({first}); {HINT}") from exc
    return model.eval()


def model_from_onnx(classifier) -> torch.nn.Module | None:
    """The network of an ONNX model of ours (an EmotionClassifier) rebuilt in torch from its
    metadata (arch, model_args) and its weights, in eval mode; None when they do not map (an
    ensemble, a graph that computes something else): it must give ONNX Runtime's logits."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from .models import build_model

    info = classifier.info
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(info.path)).graph.initializer}
    try:
        model = build_model(info.metadata["arch"], len(info.labels), info.spec.channels,
                            **info.metadata.get("model_args", {}))
        # every parameter and running statistic from the file (a missing one: RuntimeError)
        model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) if k in weights else v
                               for k, v in model.state_dict().items()
                               if k in weights or k.endswith("num_batches_tracked")})
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError):  # not a network of ours
        return None
    x = np.random.default_rng(0).normal(size=(2, info.spec.channels, info.spec.size, info.spec.size))
    x = x.astype(np.float32)
    want = classifier.session.run(None, {classifier.session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x)).numpy()
    return model if got.shape == want.shape and np.allclose(got, want, atol=1e-3) else None


def data_fingerprint(train, val) -> dict:
    """What a run trains and validates on (FaceSets): class names, face counts and a hash of the
    faces and labels, stored in every checkpoint; check_same_data compares two."""
    import hashlib

    import numpy as np

    digest = hashlib.sha1()
    for fs in (train, val):
        digest.update(np.ascontiguousarray(fs.images).data)  # the buffer itself, not a copy
        digest.update(np.ascontiguousarray(fs.labels).data)
    return {"labels": list(train.classes), "train": len(train), "val": len(val), "sha1": digest.hexdigest()}


def check_same_data(ckpt: dict, now: dict, run_dir: Path) -> None:
    """ConfigError (one line, saying what changed) when the data a resumed run loads now (`now`,
    a data_fingerprint) is not the data its checkpoint trained on. A checkpoint from before the
    fingerprint is checked on its class names only."""
    was = ckpt.get("data") or {"labels": list(ckpt["labels"])}
    if was["labels"] != now["labels"]:
        change = f"its classes were {', '.join(was['labels'])}, now {', '.join(now['labels'])}"
    elif "sha1" not in was or was["sha1"] == now["sha1"]:
        return
    elif (was["train"], was["val"]) != (now["train"], now["val"]):
        change = (f"it trained on {was['train']} faces and validated on {was['val']}, now "
                  f"{now['train']} and {now['val']}")
    else:
        change = "the same number of faces, but other images or labels"
    raise ConfigError(f"--resume {display(run_dir)}: the data changed since the run started ({change}); "
                      "put the data back as it was, or start a new run on it with "
                      f"--init-from {display(run_dir / 'last.pt')}")
