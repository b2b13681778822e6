"""ONNX Runtime emotion classifier: batch of face crops -> probabilities.

Labels, input size and normalisation come from the model file (model_file.open_model reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ModelError
from .model_file import open_model
from .preprocess import mirror, prepare_crops


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from N x K logits, divided by the model's calibration temperature first."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class EmotionClassifier:
    """Face crops -> label probabilities, with the contract read from the model file."""

    def __init__(self, model=None, threads: int | None = None) -> None:
        self.info, self.session = open_model(model, threads)
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
