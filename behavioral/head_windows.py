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
    parallel_for(_best_and_kth, scores.shape[0], scores, visible, kk, first, kth, blocks_per_thread=1)
    return first, kth


#: rows of at most this many keys pass every visible score down the list of the best (no branch:
#: faster on MiniLM's ~30-key rows); longer rows only the scores above the kk-th so far (most are not)
SHORT_ROW_KEYS = 64


@numba.njit(**JIT)
def _best_and_kth(start, stop, scores, visible, kk, first, kth):
    """Rows ``start`` … ``stop`` − 1 of :func:`row_best_and_kth`: the row's ``kk`` best so far,
    in order; a score passes down the list, each place keeping the larger (a compare-exchange,
    without branches; one at or below the ``kk``-th changes nothing, so a long row passes only
    those above it, a short one every score: :data:`SHORT_ROW_KEYS`). NaN scores count as seen
    but never enter the list."""
    best = np.empty(kk)
    short = scores.shape[1] <= SHORT_ROW_KEYS
    for r in range(start, stop):
        best[:] = -np.inf
        count = 0
        for c in range(scores.shape[1]):
            if not visible[r, c]:
                continue
            count += 1
            x = np.float64(scores[r, c])
            if short or x > best[kk - 1]:
                x = x if x == x else -np.inf        # NaN: as the comparison above, never in the list
                for i in range(kk):
                    larger = max(best[i], x)
                    x = min(best[i], x)
                    best[i] = larger
        first[r] = best[0] if count > 0 else -np.inf
        kth[r] = best[kk - 1] if count >= kk else -np.inf
