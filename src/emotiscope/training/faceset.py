"""A set of faces to train or validate on (`FaceSet`), and the selections a run makes from one:
some classes (--classes), the same number per class (--balance), a held-out slice (--val-fraction)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class FaceSet:
    """Faces (uint8 N x S x S), labels (int64 N) indexing `classes`, files skipped on load
    (unreadable, or photos with no face: those are also in `no_face`), each face's file
    (relative to its split folder; empty for CSV data) or line in the CSV file (`rows`)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)
    files: np.ndarray = field(default_factory=lambda: np.zeros(0, str))
    no_face: list[str] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def subset(self, keep: np.ndarray, **changes) -> FaceSet:
        """The faces selected by a boolean mask or index array (files and rows follow)."""
        files = self.files[keep] if len(self.files) else self.files
        rows = self.rows[keep] if len(self.rows) else self.rows
        return replace(self, images=self.images[keep], labels=self.labels[keep], files=files,
                       rows=rows, **changes)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n, strict=True)}


def check_wanted(have: tuple[str, ...], wanted: list[str]) -> None:
    """ConfigError for --classes naming a class twice or one the data (classes `have`) lacks."""
    if twice := sorted({c for c in wanted if wanted.count(c) > 1}):
        raise ConfigError(f"--classes names {', '.join(twice)} more than once; name each class once")
    if unknown := [c for c in wanted if c not in have]:
        raise ConfigError(f"unknown class(es) {', '.join(unknown)}; the data has {', '.join(have)}")


def select_classes(fs: FaceSet, wanted: list[str]) -> FaceSet:
    """Keep only `wanted` classes (in that order) and remap labels to 0..len(wanted)-1."""
    check_wanted(fs.classes, wanted)
    lut = np.full(len(fs.classes), -1, np.int64)
    for i, c in enumerate(wanted):
        lut[fs.classes.index(c)] = i
    keep = lut[fs.labels] >= 0
    return replace(fs.subset(keep), labels=lut[fs.labels][keep], classes=tuple(wanted))


def balance(fs: FaceSet, mode: str, seed: int = 0) -> FaceSet:
    """Cut every class to the rarest class's count ("min") or to N images ("N"); seeded."""
    counts = np.bincount(fs.labels, minlength=len(fs.classes))
    if mode == "min":
        cap = int(counts[counts > 0].min())
    elif mode.isdigit() and int(mode) > 0:
        cap = int(mode)
    else:
        raise ConfigError(f"--balance {mode!r} is invalid; use 'min' or a positive integer")
    short = [f"{name} ({n})" for name, n in zip(fs.classes, counts, strict=True) if 0 < n < cap]
    if short:  # they keep all they have: the classes come out unequal
        has = "has fewer faces and keeps" if len(short) == 1 else "have fewer faces and keep"
        log.warning("--balance %d: %s %s them all, so the classes are not equal; --balance "
                    "min cuts every class to the rarest one's count", cap, ", ".join(short), has)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(fs.labels == k))[:cap]
                           for k in range(len(fs.classes))])
    keep.sort()
    return fs.subset(keep)


def split_fraction(fs: FaceSet, fraction: float, seed: int = 0) -> tuple[FaceSet, FaceSet]:
    """Stratified, seeded split into (rest, held-out fraction)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--val-fraction {fraction} must be between 0 and 1 (e.g. 0.1)")
    rng = np.random.default_rng(seed)
    held = np.concatenate([rng.permutation(idx)[:max(1, int(round(len(idx) * fraction)))]
                           for k in range(len(fs.classes))
                           if len(idx := np.flatnonzero(fs.labels == k))])
    mask = np.zeros(len(fs), bool)
    mask[held] = True
    return fs.subset(~mask, skipped=[], no_face=[]), fs.subset(mask, skipped=[], no_face=[])
