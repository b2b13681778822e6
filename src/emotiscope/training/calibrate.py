"""Confidence calibration: one temperature for the logits, expected calibration error (numpy only).

"happy 87%" should be right about 87% of the time. Networks trained with cross-entropy are
usually over- or under-confident by a roughly constant factor in logit space, so one scalar T
(probabilities = softmax(logits / T)), fitted by minimising the negative log-likelihood on
held-out faces, fixes most of it without changing any prediction (Guo et al., 2017).
"""

from __future__ import annotations

import math

import numpy as np

from ..classify import softmax

T_RANGE = (0.05, 20.0)


MIN_FIT = 200  # faces a temperature is fitted on, at least, once near-duplicates are left out


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true labels at this temperature."""
    p = softmax(np.asarray(logits, np.float64), temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 60) -> float:
    """The temperature minimising the NLL (golden-section search on log T; NLL is convex in 1/T)."""
    if not len(labels):
        return 1.0
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return round(math.exp((lo + hi) / 2), 4)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error of the top-1 confidence, with the per-bin table behind it.

    ECE = sum over equal-width confidence bins of (share of faces in the bin) x |accuracy -
    mean confidence| in that bin."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    right = probs.argmax(1) == labels if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        if not n:
            continue
        acc, mean_conf = float(right[inside].mean()), float(conf[inside].mean())
        ece += n / len(conf) * abs(acc - mean_conf)
        table.append({"low": round(float(edges[k]), 4), "high": round(float(edges[k + 1]), 4), "n": n,
                      "accuracy": round(acc, 4), "confidence": round(mean_conf, 4)})
    return {"ece": round(ece, 4), "bins": table}


def calibration_record(logits: np.ndarray, labels: np.ndarray, source: str,
                       twin: np.ndarray | None = None) -> dict:
    """Temperature fitted on held-out faces, with the ECE before and after (for the metadata).

    `twin` marks faces with a near-duplicate among the training faces: they are left out of the
    fit when at least MIN_FIT faces remain. On a held-out slice of FER-2013's train/ the model is
    right on ~82 % of the 12 % that have a twin against ~66 % on the rest, so fitting on them all
    makes the temperature too sharp for new faces (docs/TRAINING.md, "Calibration")."""
    if twin is not None and twin.any() and (~twin).sum() >= MIN_FIT:
        logits, labels = logits[~twin], labels[~twin]
        source = f"{source}, without its {int(twin.sum())} near-duplicates of training faces"
    t = fit_temperature(logits, labels)
    note = unbounded(t, bool(len(labels)) and bool((logits.argmax(1) == labels).all()))
    if note:
        t = 1.0
    record = {"temperature": t, "fitted_on": source, "n": int(len(labels)),
            "ece_before": reliability(softmax(logits, 1.0), labels)["ece"],
            "ece_after": reliability(softmax(logits, t), labels)["ece"],
            "nll_before": round(nll(logits, labels, 1.0), 4), "nll_after": round(nll(logits, labels, t), 4)}
    return {**record, "note": note} if note else record


def unbounded(t: float, all_right: bool) -> str:
    """Why a fitted temperature is kept at 1 ('' when it is a real minimum of the NLL).

    When every held-out face is right (a small validation split, often) the NLL only falls as T
    shrinks: the fit runs towards 0.05 and every later prediction would read 100 %, which is no
    calibration. The other end (T = 20, near-uniform scores) is kept: it is what a model that
    is mostly wrong on its validation faces has earned."""
    if all_right:
        return "not fitted: every validation face is right, so no temperature is best; kept 1"
    if t <= T_RANGE[0] * 1.01:  # the wrong faces' top scores (nearly) tie: they barely count
        return (f"not fitted: the fit ran to the end of its range (T {T_RANGE[0]:g}), which "
                "would make every later prediction read 100 %; kept 1")
    return ""
