"""The study's metrics, as pure functions of selections, codes and per-instance values."""
from __future__ import annotations

import math

import numpy as np

#: bins (LSB) of the per-column max |INL| and max |DNL| histograms; larger values go in the last bin
INL_DNL_BINS_LSB = np.linspace(0.0, 2.0, 41)


def codes_from_firing(firing_cycle: np.ndarray, n_steps: int = 32) -> np.ndarray:
    """Full-ramp ADC codes from firing cycles (``mode="conventional"``'s rule: never fired = 0)."""
    return np.where(firing_cycle <= n_steps, n_steps - firing_cycle, 0)


def set_overlap(selected: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: |selected ∩ reference|, |selected|, |reference|, ignoring −1 (empty) slots."""
    a, b = np.asarray(selected), np.asarray(reference)
    va, vb = a >= 0, b >= 0
    hit = ((a[..., :, None] == b[..., None, :]) & va[..., :, None] & vb[..., None, :]).any(axis=-1)
    return hit.sum(axis=-1), va.sum(axis=-1), vb.sum(axis=-1)


def recall_precision(selected: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean over rows of |S ∩ R| / |R| (rows with an empty R left out) and of |S ∩ R| / |S|
    (rows with an empty S left out); 1.0 when no row counts."""
    hit, n_sel, n_ref = set_overlap(selected, reference)
    rec = hit[n_ref > 0] / n_ref[n_ref > 0]
    prec = hit[n_sel > 0] / n_sel[n_sel > 0]
    return (float(rec.mean()) if rec.size else 1.0), (float(prec.mean()) if prec.size else 1.0)


def exact_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Digital top-k of integer scores, ties to lower key index (rows, k)."""
    return np.sort(np.argsort(-scores, axis=-1, kind="stable")[..., :k], axis=-1)


def band(values) -> dict:
    """Across-instance statistics of one metric: mean, standard deviation, the 95 % confidence
    interval of the mean (Student t) and the 2.5–97.5 % spread of the instances themselves."""
    from scipy.stats import t as student_t
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    half = float(student_t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    lo, hi = np.percentile(x, [2.5, 97.5])
    return {"n": n, "mean": mean, "std": std, "ci95_mean": [mean - half, mean + half],
            "spread95": [float(lo), float(hi)]}
