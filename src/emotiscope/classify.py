"""ONNX Runtime emotion classifier: batch of face crops -> probabilities.

Labels, input size and normalisation come from the model file (see model_file.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import ModelError
from .model_file import (
    ModelInfo,
    check_graph,
    file_sha256,
    parse_metadata,
    resolve_model_path,
    verify_checksum,
)
from .preprocess import mirror, prepare_crops


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from N x K logits, divided by the model's calibration temperature first."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _session(path, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.log_severity_level = 3
    # Spinning worker threads steal the cores the face detector needs (measured: one-face frame
    # 30 -> 17 ms end to end without spinning).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {path}: not a valid ONNX model ({first}); "
                         "pass a model exported by `emotiscope export`") from exc


def read_temperature(meta: dict, path) -> float:
    """The calibration temperature in the model's metadata (1.0 when it has none)."""
    value = meta.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 100:
        raise ModelError(f"model {path} has temperature {value!r} in its metadata; it must be a number "
                         "in [0.01, 100]: re-export the model")
    return float(value)


class EmotionClassifier:
    """Face crops -> label probabilities, with the contract read from the model file."""

    def __init__(self, model=None, threads: int | None = None) -> None:
        path = resolve_model_path(model)
        digest = file_sha256(path)
        verify_checksum(path, digest)
        self.session = _session(path, threads)
        custom = self.session.get_modelmeta().custom_metadata_map
        labels, spec, meta = parse_metadata(custom, path)
        self.info = ModelInfo(path=path, labels=labels, spec=spec, sha256=digest, metadata=meta,
                              temperature=read_temperature(meta, path))
        check_graph(path, self.session.get_inputs(), self.session.get_outputs(), labels, spec)
        self._input = self.session.get_inputs()[0].name

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    def predict_batch(self, batch: np.ndarray, flip_tta: bool = False,
                      temperature: float | None = None) -> np.ndarray:
        """Normalised NxCxSxS float32 input -> Nxlabels probabilities (rows sum to 1), calibrated
        with the model's temperature unless another is given (1.0 = the raw softmax)."""
        if len(batch) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        t = self.info.temperature if temperature is None else temperature
        probs = self._run(batch, t)
        if flip_tta:
            probs = (probs + self._run(mirror(batch), t)) / 2
        return probs.astype(np.float32)

    def _run(self, batch: np.ndarray, temperature: float) -> np.ndarray:
        """Probabilities for one batch; ModelError when the model gives wrong-shaped or
        non-finite scores (a NaN must never be printed as a result)."""
        logits = self.session.run(None, {self._input: batch})[0]
        path, k = self.info.path, len(self.labels)
        if logits.shape != (len(batch), k):
            raise ModelError(f"model {path} returned scores of shape {logits.shape} for "
                             f"{len(batch)} faces and {k} labels; re-export it with `emotiscope export`")
        if not np.isfinite(logits).all():
            raise ModelError(f"model {path} returned NaN or infinite scores; the model is broken: "
                             "retrain or re-export it, or use the bundled model")
        return softmax(logits, temperature)

    def predict_crops(self, crops: Sequence[np.ndarray], flip_tta: bool = False) -> np.ndarray:
        """Face crops (any size, grey or RGB uint8) -> probabilities."""
        return self.predict_batch(prepare_crops(crops, self.info.spec), flip_tta)
