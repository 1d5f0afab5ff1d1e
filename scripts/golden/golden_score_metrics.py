#!/usr/bin/env python3
"""Golden values of the `anagram score` metrics: tests/golden/score_metrics.pt.

Usage:
    .venv/bin/python scripts/golden/golden_score_metrics.py

Everything is computed with numpy in float64 (torch only writes the file, through
golden_io.save_tensors). Definitions (docs/scorer.md): a sample has N views and N prompts,
view i meant to show prompt i; S is its N x N matrix of cosine similarities, row = the
view's image, column = the prompt; t = logit_scale (1/tau).
    alignment              A   = min_i S_ii
    concealment            C   = mean_i softmax_j(t * S_ij)_ii   (softmax along each row:
                                 for each view's image, over the prompts)
    concealment over views C_v = mean_j softmax_i(t * S_ij)_jj   (softmax along each column:
                                 for each prompt, over the views' images)
Over samples: mean, numpy.quantile(x, 0.9) and (x, 0.95) (default "linear" method).
Bootstrap 95% interval of a statistic: B = 1000 resamples, indices from SplitMix64(seed 0),
resample b takes the next n indices rng.below(n) in order; the interval is
numpy.percentile(stats, [2.5, 97.5]) (linear). Each interval starts a fresh generator with
seed 0, so every statistic sees the same 1000 resamples.

Tensors (float64 unless noted):
    s2 (20,2,2), s3 (7,3,3)      similarity matrices in [-0.1, 0.45] (seeded, some made by hand)
    logit_scale                  scalar 100.0
    a2, c2, cv2 (20); a3, c3, cv3 (7)   per-sample A, C, C_v
    a2_mean, a2_q90, a2_q95, c2_mean, c2_q90, c2_q95   scalars over the 20 samples
    a2_mean_ci, a2_q90_ci, c2_mean_ci (2)               bootstrap intervals (seed 0, B 1000)
    boot_first_idx (5,20) int64  the indices of the first 5 resamples
"""
import os

import numpy as np
import torch

from anagram_py import golden_io
from anagram_py.paths import GOLDEN_DIR
from anagram_py.splitmix64 import SplitMix64

OUT = os.path.join(GOLDEN_DIR, "score_metrics.pt")
LOGIT_SCALE = 100.0
B = 1000


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def alignment(s):
    return float(np.min(np.diag(s)))


def concealment(s, t):
    return float(np.mean(np.diag(softmax(t * s, axis=1))))


def concealment_views(s, t):
    return float(np.mean(np.diag(softmax(t * s, axis=0))))


def q90(x):
    return float(np.quantile(x, 0.9))


def q95(x):
    return float(np.quantile(x, 0.95))


def mean(x):
    return float(np.mean(x))


def bootstrap_indices(n, b=B, seed=0):
    rng = SplitMix64(seed)
    return np.array([[rng.below(n) for _ in range(n)] for _ in range(b)], dtype=np.int64)


def bootstrap_ci(x, stat, b=B, seed=0):
    x = np.asarray(x, dtype=np.float64)
    idx = bootstrap_indices(len(x), b, seed)
    stats = np.array([stat(x[row]) for row in idx])
    return np.percentile(stats, [2.5, 97.5])


def similarity_samples(n_views, count, seed, hand_made=()):
    """count (n_views x n_views) matrices like CLIP cosines: diagonal mostly higher."""
    rng = np.random.default_rng(seed)
    out = [np.asarray(h, dtype=np.float64) for h in hand_made]
    while len(out) < count:
        # gaps of a few hundredths, so that t * S gives unsaturated softmaxes
        s = rng.uniform(0.10, 0.30, size=(n_views, n_views))
        s[np.diag_indices(n_views)] = rng.uniform(0.17, 0.35, size=n_views)
        out.append(s)
    s = np.clip(np.round(np.stack(out), 4), -0.1, 0.45)
    return s


HAND_2 = [
    [[0.30, 0.30], [0.30, 0.30]],     # all equal: C = C_v = 1/2
    [[0.45, -0.10], [-0.10, 0.45]],   # the range's extremes
    [[0.10, 0.32], [0.29, 0.12]],     # views show the other prompt (failure)
    [[0.31, 0.18], [0.31, 0.18]],     # both views look like prompt 0 (domination)
]
HAND_3 = [
    [[0.28, 0.20, 0.19], [0.21, 0.27, 0.18], [0.17, 0.22, 0.30]],
    [[0.25, 0.25, 0.25], [0.25, 0.25, 0.25], [0.25, 0.25, 0.25]],
]


def main():
    s2 = similarity_samples(2, 20, seed=2024, hand_made=HAND_2)
    s3 = similarity_samples(3, 7, seed=2025, hand_made=HAND_3)
    t = LOGIT_SCALE
    a2 = np.array([alignment(s) for s in s2])
    c2 = np.array([concealment(s, t) for s in s2])
    cv2 = np.array([concealment_views(s, t) for s in s2])
    a3 = np.array([alignment(s) for s in s3])
    c3 = np.array([concealment(s, t) for s in s3])
    cv3 = np.array([concealment_views(s, t) for s in s3])
    first = bootstrap_indices(20, 5, seed=0)
    assert np.array_equal(first, bootstrap_indices(20)[:5])

    f64 = lambda v: torch.tensor(np.asarray(v, dtype=np.float64), dtype=torch.float64)  # noqa: E731
    tensors = {
        "s2": f64(s2), "s3": f64(s3), "logit_scale": f64(t),
        "a2": f64(a2), "c2": f64(c2), "cv2": f64(cv2),
        "a3": f64(a3), "c3": f64(c3), "cv3": f64(cv3),
        "a2_mean": f64(mean(a2)), "a2_q90": f64(q90(a2)), "a2_q95": f64(q95(a2)),
        "c2_mean": f64(mean(c2)), "c2_q90": f64(q90(c2)), "c2_q95": f64(q95(c2)),
        "a2_mean_ci": f64(bootstrap_ci(a2, mean)),
        "a2_q90_ci": f64(bootstrap_ci(a2, q90)),
        "c2_mean_ci": f64(bootstrap_ci(c2, mean)),
        "boot_first_idx": torch.tensor(first, dtype=torch.int64),
    }
    golden_io.save_tensors(OUT, tensors)
    np.set_printoptions(precision=6, suppress=True)
    for k in ("a2_mean", "a2_q90", "a2_q95", "c2_mean", "c2_q90", "c2_q95",
              "a2_mean_ci", "a2_q90_ci", "c2_mean_ci"):
        print(f"{k} = {tensors[k].numpy()}")
    print(f"boot_first_idx[0] = {first[0].tolist()}")
    rng = SplitMix64(0)
    print(f"SplitMix64(0) first outputs: {[hex(rng.next()) for _ in range(3)]}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
