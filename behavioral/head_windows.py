"""Each attention head's ADC window, chosen from its rows' scores as :func:`~topkima.behavioral.macro.adc.choose_adc_range`
says: the window's top at a quantile of the rows' best scores, its bottom at a quantile of their
k-th best, computed for all heads in one pass over the scores."""
from __future__ import annotations

import numba
import numpy as np

from topkima.behavioral.macro.adc import AdcRange, adc_range_spanning
from topkima.behavioral.macro.runtime import JIT, parallel_for


def head_windows(scores_units, visible, rows, kk, n_heads, top_quantile: float = 0.75,
                 bottom_quantile: float = 0.1, limits=None) -> list[tuple[AdcRange, float]]:
    """Per head, the ADC window and query scale that :func:`~topkima.behavioral.macro.adc.choose_adc_range` sets from the
    head's ``rows`` (…, heads, T_q: real rows that see at least ``kk`` keys) of visible scores.
    It reads only each row's largest and ``kk``-th largest score: those are taken here for all
    heads at once, and their quantiles too when every head has the same rows (one mask for all).
    ``limits``: the ramp's :class:`~topkima.behavioral.macro.ramp_limits.RampLimits` (None: the
    committed design's)."""
    if not 0 <= bottom_quantile <= top_quantile <= 1:
        raise ValueError("need 0 ≤ bottom_quantile ≤ top_quantile ≤ 1")
    t_k = visible.shape[-1]
    first, kth = row_best_and_kth(np.ascontiguousarray(scores_units).reshape(-1, t_k),
                                   np.ascontiguousarray(visible).reshape(-1, t_k), kk)
    first, kth = (np.moveaxis(x.reshape(visible.shape[:-1]), -2, 0).reshape(n_heads, -1) for x in (first, kth))
    rows = np.moveaxis(np.broadcast_to(rows, visible.shape[:-1]), -2, 0).reshape(n_heads, -1)
    if not rows.any(axis=1).all():
        raise ValueError("no query row sees top_k keys: nothing to set the ADC window from")
    if (rows == rows[:1]).all():
        tops = np.quantile(first[:, rows[0]], top_quantile, axis=1)
        bottoms = np.quantile(kth[:, rows[0]], bottom_quantile, axis=1)
    else:
        tops = [np.quantile(first[h, rows[h]], top_quantile) for h in range(n_heads)]
        bottoms = [np.quantile(kth[h, rows[h]], bottom_quantile) for h in range(n_heads)]
    return [adc_range_spanning(float(t), float(b), limits=limits) for t, b in zip(tops, bottoms)]


def row_best_and_kth(scores: np.ndarray, visible: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` (rows, keys), its largest and ``kk``-th largest visible score
    (float64; −inf where the row sees fewer than ``kk`` keys), rows in parallel."""
    first = np.empty(scores.shape[0])
    kth = np.empty(scores.shape[0])
    kernel = _best_and_kth_in_lanes if scores.shape[1] <= SHORT_ROW_KEYS else _best_and_kth
    parallel_for(kernel, scores.shape[0], scores, visible, kk, first, kth, blocks_per_thread=1)
    return first, kth


#: rows of at most this many keys (MiniLM's ~30) pass every visible score down the list of the best,
#: LANE_ROWS rows side by side (:func:`_best_and_kth_in_lanes`); longer rows one by one, only the
#: scores above the kk-th so far (most are not: :func:`_best_and_kth`)
SHORT_ROW_KEYS = 64
#: short rows whose lists of the best sit side by side (one vector lane each)
LANE_ROWS = 64


@numba.njit(**JIT)
def _best_and_kth(start, stop, scores, visible, kk, first, kth):
    """Rows ``start`` … ``stop`` − 1 of :func:`row_best_and_kth`, one by one: the row's ``kk`` best so
    far, in order; a score above the ``kk``-th passes down the list, each place keeping the larger
    (a compare-exchange; one at or below the ``kk``-th would change nothing). NaN scores count as
    seen but never enter the list."""
    best = np.empty(kk)
    for r in range(start, stop):
        best[:] = -np.inf
        count = 0
        for c in range(scores.shape[1]):
            if not visible[r, c]:
                continue
            count += 1
            x = np.float64(scores[r, c])
            if x > best[kk - 1]:                    # (False for NaN)
                for i in range(kk):
                    larger = max(best[i], x)
                    x = min(best[i], x)
                    best[i] = larger
        first[r] = best[0] if count > 0 else -np.inf
        kth[r] = best[kk - 1] if count >= kk else -np.inf


@numba.njit(**JIT)
def _best_and_kth_in_lanes(start, stop, scores, visible, kk, first, kth):
    """:func:`_best_and_kth` for short rows, :data:`LANE_ROWS` rows side by side: their scores are
    first laid out key by key (a hidden or NaN score as −inf), then every score passes down its
    row's whole list (compare-exchanges without branches, the rows in vector lanes)."""
    n_keys = scores.shape[1]
    x = np.empty((n_keys, LANE_ROWS))
    best = np.empty((kk, LANE_ROWS))
    count = np.empty(LANE_ROWS, dtype=np.int64)
    for r0 in range(start, stop, LANE_ROWS):
        m = min(LANE_ROWS, stop - r0)
        for i in range(m):
            count[i] = 0
            for c in range(n_keys):
                s = np.float64(scores[r0 + i, c])
                seen = visible[r0 + i, c]
                x[c, i] = s if seen and s == s else -np.inf
                count[i] += seen
        best[:, :m] = -np.inf
        for c in range(n_keys):
            x_c = x[c, :m]
            for p in range(kk):
                best_p = best[p, :m]
                for i in range(m):
                    larger = max(best_p[i], x_c[i])
                    x_c[i] = min(best_p[i], x_c[i])
                    best_p[i] = larger
        for i in range(m):
            first[r0 + i] = best[0, i] if count[i] > 0 else -np.inf
            kth[r0 + i] = best[kk - 1, i] if count[i] >= kk else -np.inf
