"""Evaluation: metrics from predictions, and an ONNX model evaluated on a CSV split, crop folders
or class folders of photos. Only numpy, OpenCV and ONNX Runtime (no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import ConfigError, DataError
from ..outputs import display
from .data import IMAGE_EXTS, load_any, split_folders
from .faceset import FaceSet, select_classes
from .photos import is_photo_folder, largest_face

log = logging.getLogger(__name__)

Split = TypeVar("Split")  # a FaceSet, or the folder of a split of photos


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts; rows are true classes, columns predicted classes."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def classification_report(y_true, y_pred, classes) -> dict:
    """Top-1 accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    A prediction of -1 means "no prediction" (e.g. no face found): it counts as wrong, and the
    confusion matrix then gets one more column for it."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    k = len(classes)
    none = bool((y_pred < 0).any())
    if none:
        cm = confusion_matrix(y_true, np.where(y_pred < 0, k, y_pred), k + 1)[:k]
    else:
        cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm[:, :k]).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm[:, :k].sum(0))
        recall = np.nan_to_num(tp / cm.sum(1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    present = cm.sum(1) > 0
    per_class = {c: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                     "f1": round(float(f1[i]), 4), "support": int(cm[i].sum())}
                 for i, c in enumerate(classes)}
    return {
        "accuracy": round(float(tp.sum() / max(1, len(y_true))), 4),
        "macro_f1": round(float(f1[present].mean()) if present.any() else 0.0, 4),
        "n": int(len(y_true)),
        "per_class": per_class,
        "labels": list(classes) + (["(no face)"] if none else []),
        "confusion": cm.tolist(),
    }


TTA_MODES = ("none", "flip", "multicrop")


def tta_views(faces: np.ndarray, mode: str, shift: int = 3) -> list[np.ndarray]:
    """Views of uint8 N x S x S faces: as is; + mirror ("flip"); + 4 diagonal shifts of each
    ("multicrop": 10 views, like the training-time random crops)."""
    from ..preprocess import mirror

    views = [faces]
    if mode == "none":
        return views
    views.append(mirror(faces))
    if mode == "multicrop":
        s = faces.shape[1]
        for base in (faces, views[1]):
            padded = np.pad(base, ((0, 0), (shift, shift), (shift, shift)), mode="edge")
            for dy, dx in ((0, 0), (0, 2), (2, 0), (2, 2)):
                views.append(padded[:, dy * shift:dy * shift + s, dx * shift:dx * shift + s])
    return [np.ascontiguousarray(v) for v in views]


def predict_faces(classifier, faces: np.ndarray, tta: str = "none", batch: int = 256,
                  temperature: float | None = None) -> np.ndarray:
    """Mean probabilities over the TTA views for uint8 N x S x S faces at the model's size
    (calibrated with the model's temperature unless `temperature` is given)."""
    from ..preprocess import batch_input

    spec = classifier.info.spec
    out = []
    for i in range(0, len(faces), batch):
        chunk = faces[i:i + batch]
        probs = [classifier.predict_batch(batch_input(list(v), spec), temperature=temperature)
                 for v in tta_views(chunk, tta)]
        out.append(np.mean(probs, axis=0))
    return np.concatenate(out) if out else np.zeros((0, len(classifier.labels)), np.float32)


def pick_split(splits: dict[str, Split], split: str | None, path: Path) -> tuple[str, Split]:
    """The requested split, else test > val > all (never train unless asked). `splits`: FaceSets
    or folders by split name."""
    if split:
        if split not in splits:
            raise ConfigError(f"--split {split!r} not in {path}; it has {', '.join(splits)}")
        return split, splits[split]
    for name in ("test", "val", "all"):
        if name in splits:
            return name, splits[name]
    raise ConfigError(f"{path} has only {', '.join(splits)}; pass --split train to evaluate on it")


def map_labels(fs: FaceSet, model_labels: tuple[str, ...]) -> np.ndarray:
    """Data labels -> indices of the model's labels (every data class must be a model label)."""
    missing = [c for c in fs.classes if c not in model_labels]
    if missing:
        raise DataError(f"data classes {', '.join(missing)} are not labels of the model "
                        f"({', '.join(model_labels)}); pass --classes {','.join(model_labels)} to "
                        "evaluate on those classes only, rename the folders or use a matching model")
    lut = np.array([model_labels.index(c) for c in fs.classes])
    return lut[fs.labels]


def photo_faces(root: Path, recognizer, size: int, classes: list[str] | None = None):
    """Class folders of photos -> (largest-face crops or None where no face, labels, classes,
    files, unreadable files). An image that cannot be read is listed and left out. `classes`:
    only those class folders."""
    from ..errors import InputError
    from ..images import load_image

    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise DataError(f"{display(root)} has no class folders; expected {display(root)}/<class>/*.jpg")
    if classes:
        names = [display(d.name) for d in folders]
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise ConfigError(f"--classes: no folder for {', '.join(unknown)}; {display(root)} has "
                              f"{', '.join(names)}")
        folders = [folders[names.index(c)] for c in classes]
    margin = recognizer.classifier.info.spec.margin
    faces, labels, files, unreadable = [], [], [], []
    for k, folder in enumerate(folders):
        for f in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
            try:
                image = load_image(f)
            except InputError as exc:
                log.warning("skipping %s", exc)
                unreadable.append(display(f))
                continue
            faces.append(largest_face(image, recognizer.detect(image), margin, size))
            labels.append(k)
            files.append(display(f))
    found = tuple(display(d.name) for d in folders)
    return faces, np.array(labels, np.int64), found, files, unreadable


def evaluate(model, data: Path, split: str | None = None, tta: str | None = None,
             faces: str = "auto", detector: str = "auto", classes: list[str] | None = None,
             details: dict | None = None, options=None) -> dict:
    """Report dict (accuracy, macro_f1, per_class, confusion, ...) for `model` on `data`.

    `classes`: only the data of these classes (e.g. a 3-class model on a 7-class folder).
    `details`, when given, is filled with the per-face results: names (face_names), y_true
    and y_pred (model label indices; -1 = no face), probs (N x labels; NaN rows where no face) and
    faces (the crops the model saw; None where no face). `options` (RecognizerOptions): how
    faces are detected in photos (default: `detector` with the other defaults). `tta` None:
    the model's own choice (flip or none, its `tta` metadata)."""
    from ..classify import EmotionClassifier

    classifier = EmotionClassifier(model)
    tta = tta or classifier.info.tta
    size, labels = classifier.info.spec.size, classifier.labels
    data = Path(data)
    photos = faces == "detect" or (faces == "auto" and data.is_dir() and is_photo_folder(data))
    if photos and not data.is_dir():
        raise ConfigError(f"--faces detect needs class folders of photos ({data}/<class>/*.jpg); "
                          f"{data} is not a folder")
    if photos:
        return _evaluate_photos(classifier, data, split, tta, options or detector, classes, details)
    splits = load_any(data, size, wanted=classes)
    name, fs = pick_split(splits, split, data)
    if classes:
        fs = select_classes(fs, classes)
    y_true = map_labels(fs, labels)
    probs = predict_faces(classifier, fs.images, tta)
    if details is not None:
        details.update(names=face_names(fs), y_true=y_true, y_pred=probs.argmax(1), probs=probs,
                       faces=list(fs.images))
    report = classification_report(y_true, probs.argmax(1), labels)
    report.update(_header(classifier, data, name, tta, "crops"))
    report["skipped"] = fs.skipped
    report["calibration"] = calibration(classifier, fs.images, y_true, probs, tta)
    if name != "train" and "train" in splits:
        from .duplicates import near_duplicates

        report["duplicate_free"] = duplicate_free(y_true, probs.argmax(1), labels,
                                                  near_duplicates(fs.images, splits["train"].images))
    return report


def face_names(fs: FaceSet) -> list[str]:
    """Each face's name: its file, or "row N" for the face on line N of a CSV (the header is
    line 1, as in the CSV's error messages), else its index."""
    if len(fs.files):
        return [str(f) for f in fs.files]
    if len(fs.rows):
        return [f"row {r}" for r in fs.rows]
    return [str(i) for i in range(len(fs))]


def calibration(classifier, faces: np.ndarray, y_true: np.ndarray, probs: np.ndarray, tta: str) -> dict:
    """ECE and reliability bins of the reported probabilities, and the ECE of the raw softmax
    (temperature 1) when the model carries another temperature."""
    from .calibrate import reliability

    out = {"temperature": classifier.info.temperature, **reliability(probs, y_true)}
    if classifier.info.temperature != 1.0:
        raw = predict_faces(classifier, faces, tta, temperature=1.0)
        out["ece_uncalibrated"] = reliability(raw, y_true)["ece"]
    return out


def holdout_report(logits: np.ndarray, fs, twin: np.ndarray, source: str) -> dict:
    """The final report of a run's validation faces (FaceSet `fs`): accuracy and per-class table,
    the same without the faces in `twin` (near-duplicates of training faces), and the calibration
    temperature fitted without them."""
    from . import calibrate

    report = classification_report(fs.labels, logits.argmax(1), fs.classes)
    report["source"] = source
    report["duplicate_free"] = duplicate_free(fs.labels, logits.argmax(1), fs.classes, twin)
    report["calibration"] = calibrate.calibration_record(logits, fs.labels, source, twin)
    return report


def dup_free_text(row: dict) -> str:
    """' (dup-free 0.6612)' for an epoch row with a duplicate-free accuracy (' (dup-free n/a)' when
    every validation face has a training twin), else ''."""
    if "val_acc_dup_free" not in row:
        return ""
    value = row["val_acc_dup_free"]
    return f" (dup-free {'n/a' if value is None else f'{value:.4f}'})"


def duplicate_free(y_true: np.ndarray, y_pred: np.ndarray, labels, twin: np.ndarray) -> dict:
    """Accuracy and macro-F1 without the faces that have a near-twin in the training faces (`twin`,
    a mask from duplicates.near_duplicates); None (not available) when every face has one."""
    from .duplicates import THRESHOLD

    kept = classification_report(y_true[~twin], y_pred[~twin], labels)
    some = kept["n"] > 0
    return {"accuracy": kept["accuracy"] if some else None, "macro_f1": kept["macro_f1"] if some else None,
            "n": kept["n"],
            "excluded": int(twin.sum()), "threshold": THRESHOLD,
            "accuracy_on_excluded": round(float((y_true[twin] == y_pred[twin]).mean()), 4)
            if twin.any() else None}


def _evaluate_photos(classifier, data: Path, split: str | None, tta: str, detection, wanted=None,
                     details: dict | None = None) -> dict:
    """Class folders of photos, or those of one split (`split`, as pick_split chooses) in a
    train/ val/ test/ layout. `detection`: a RecognizerOptions, or a detector name."""
    from ..options import RecognizerOptions
    from ..pipeline import EmotionRecognizer

    options = detection if isinstance(detection, RecognizerOptions) else \
        RecognizerOptions(detector=detection)
    name, root = pick_split(split_folders(data), split, data)
    recognizer = EmotionRecognizer(options.replace(model=classifier.info.path))
    crops, y, classes, files, unreadable = photo_faces(root, recognizer, classifier.info.spec.size,
                                                       wanted)
    if not files:
        raise DataError(f"no readable photos under {display(root)} ({len(unreadable)} unreadable); "
                        "check the images")
    y_true = map_labels(FaceSet(np.zeros((len(y), 1, 1), np.uint8), y, classes), classifier.labels)
    found = np.array([c is not None for c in crops], bool)
    y_pred = np.full(len(y_true), -1)  # no face found: counted as wrong
    if found.any():
        stack = np.stack([c for c in crops if c is not None])
        probs = predict_faces(classifier, stack, tta)
        y_pred[found] = probs.argmax(1)
    if details is not None:
        full = np.full((len(y_true), len(classifier.labels)), np.nan, np.float32)
        if found.any():
            full[found] = probs
        details.update(names=files, y_true=y_true, y_pred=y_pred, probs=full, faces=crops)
    report = classification_report(y_true, y_pred, classifier.labels)
    report.update(_header(classifier, data, "photos" if name == "all" else name, tta, "detected"))
    if found.any():
        report["calibration"] = calibration(classifier, stack, y_true[found], probs, tta)
    report["no_face"] = [f for f, ok in zip(files, found, strict=True) if not ok]
    report["skipped"] = unreadable
    return report


def _header(classifier, data: Path, split: str, tta: str, faces: str) -> dict:
    info = classifier.info
    return {"model": display(info.path), "model_sha256": info.sha256, "data": display(data),
            "split": split, "tta": tta, "faces": faces}
