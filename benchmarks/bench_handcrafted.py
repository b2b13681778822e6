"""Would hand-crafted features add what the network misses? Dense SIFT + VLAD + a linear SVM.

Papers that pass 73 % on FER-2013 often average a CNN with a bag-of-visual-words model of dense
SIFT descriptors (Georgescu et al. 2019): features that err differently. This measures the idea
on our data: dense SIFT (OpenCV) on a 14 x 14 grid at two scales (bins of 3 and 6 px), RootSIFT,
PCA to `--dims`, a `--words`-word vocabulary (k-means), VLAD over a 1 x 1 + 2 x 2 pyramid
(power- and intra-normalised), a linear SVM (scikit-learn) trained on train/ without the held-out
5 % slice (`--val-fraction 0.05`, which the bundled model never trained on), its scores turned
into probabilities by a temperature fitted on the slice. Printed: the SVM alone and the model's
probabilities averaged with the SVM's at each weight, on the slice (which chooses) and on val/.
Needs scikit-learn (`pip install scikit-learn`); about 30 minutes on 2 cores and about 17 GB of
memory at its peak (the SVM's own copy of the training features). Never run as a test.

    python benchmarks/bench_handcrafted.py /tmp/fer2013 [--model M] [--words 64] [--dims 64]
"""

from __future__ import annotations

import argparse
import multiprocessing
from multiprocessing.pool import Pool
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.svm import LinearSVC

from emotiscope.classify import EmotionClassifier, softmax
from emotiscope.preprocess import prepare_crops
from emotiscope.training.calibrate import fit_temperature
from emotiscope.training.data import load_any
from emotiscope.training.faceset import split_fraction
from emotiscope.training.prepare import SPLIT_SEED

GRID = np.arange(4, 45, 3)  # 14 descriptor centres per axis of a 48 px face
SIZES = (2.0, 4.0)  # OpenCV keypoint sizes: SIFT bins of 3 and 6 px (a bin is 1.5 x size)
WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # the network's share of the average


def dense_sift(images: np.ndarray) -> np.ndarray:
    """N x 48 x 48 grey -> N x descriptors x 128 SIFT (uint8, as OpenCV's values are)."""
    sift = cv2.SIFT_create()
    points = [cv2.KeyPoint(float(x), float(y), s) for s in SIZES for y in GRID for x in GRID]
    out = np.zeros((len(images), len(points), 128), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.clip(sift.compute(np.ascontiguousarray(image), points)[1], 0, 255)
    return out


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT of ... x 128 descriptors: the square root of each L1-normalised one."""
    d = desc.astype(np.float32)
    return np.sqrt(d / (d.sum(-1, keepdims=True) + 1e-6))


def regions() -> np.ndarray:
    """descriptors x 2: each descriptor's cell in the 1 x 1 (0) and 2 x 2 (1-4) pyramid levels."""
    half = (GRID >= 24).astype(int)
    quad = (half[:, None] * 2 + half[None, :]).ravel()
    quad = np.tile(quad, len(SIZES))
    return np.stack([np.zeros_like(quad), 1 + quad], axis=1)


def vlad(desc: np.ndarray, pca: PCA, words: np.ndarray) -> np.ndarray:
    """N x descriptors x 128 -> N x (5 cells x words x dims) VLAD vectors."""
    n, m, _ = desc.shape
    k, dims = words.shape
    d = pca.transform(root_sift(desc.reshape(-1, 128))).astype(np.float32)
    nearest = ((words ** 2).sum(1)[None] - 2 * d @ words.T).argmin(1)
    residual = d - words[nearest]
    cells = regions()  # m x 2
    rows = (np.repeat(np.arange(n), m)[:, None] * 5 + np.tile(cells, (n, 1))) * k + nearest[:, None]
    cols = np.repeat(np.arange(n * m), 2)
    onehot = sparse.csr_matrix((np.ones(rows.size, np.float32), (rows.ravel(), cols)),
                               shape=(n * 5 * k, n * m))
    v = (onehot @ residual).reshape(n, 5, k, dims)
    v = np.sign(v) * np.sqrt(np.abs(v))
    v /= np.linalg.norm(v, axis=3, keepdims=True) + 1e-6
    v = v.reshape(n, 5, -1)
    v /= np.linalg.norm(v, axis=2, keepdims=True) + 1e-6
    return v.reshape(n, -1)


def features(images: np.ndarray, pool: Pool) -> np.ndarray:
    return np.concatenate(pool.map(dense_sift, np.array_split(images, 16)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="FER-2013 folder with train/ and val/")
    ap.add_argument("--model", help="ONNX model (default: the bundled one)")
    ap.add_argument("--words", type=int, default=64)
    ap.add_argument("--dims", type=int, default=64)
    ap.add_argument("--svm-c", type=float, default=0.1)
    args = ap.parse_args()
    splits = load_any(args.data)
    rest, held = split_fraction(splits["train"], 0.05, SPLIT_SEED)
    sets = {"train": rest, "slice": held, "val": splits["val"]}
    clf = EmotionClassifier(args.model)
    net = {k: clf.predict_batch(prepare_crops(list(fs.images), clf.info.spec)) for k, fs in sets.items()
           if k != "train"}
    with multiprocessing.Pool(2) as pool:
        desc = {k: features(fs.images, pool) for k, fs in sets.items()}
    rng = np.random.default_rng(0)
    flat = desc["train"].reshape(-1, 128)
    sample = root_sift(flat[rng.choice(len(flat), 300_000, replace=False)])
    pca = PCA(args.dims, random_state=0).fit(sample)
    words = MiniBatchKMeans(args.words, batch_size=8192, n_init=3, random_state=0,
                            max_iter=100).fit(pca.transform(sample)).cluster_centers_.astype(np.float32)
    x = {k: np.concatenate([vlad(c, pca, words) for c in np.array_split(d, 64)]) for k, d in desc.items()}
    y = {k: fs.labels for k, fs in sets.items()}
    svm = LinearSVC(C=args.svm_c).fit(x["train"], y["train"])
    scores = {k: svm.decision_function(x[k]) for k in ("slice", "val")}
    t = fit_temperature(scores["slice"], y["slice"])
    hand = {k: softmax(s, t) for k, s in scores.items()}
    print(f"VLAD {args.words} words x {args.dims} dims, SVM C {args.svm_c}, temperature {t:g}")
    print(f"{'network weight':>15} {'slice':>8} {'val':>8}")
    print(f"{'SVM alone':>15} " + " ".join(f"{(hand[k].argmax(1) == y[k]).mean():8.2%}" for k in hand))
    for w in WEIGHTS:
        accs = [((w * net[k] + (1 - w) * hand[k]).argmax(1) == y[k]).mean() for k in hand]
        print(f"{w:15.1f} " + " ".join(f"{a:8.2%}" for a in accs))


if __name__ == "__main__":
    main()
