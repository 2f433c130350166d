"""The arbiter and k-counter: the first k comparators to fire are granted, ties to lower addresses;
the ramp stops at the cycle of the k-th grant (the full ramp when fewer than k fire).

Sub-top-k: each array converts its own keys with its own quota; the results are concatenated.
"""
from __future__ import annotations

import numba
import numpy as np

from topkima.behavioral.macro.runtime import KERNEL


@numba.njit(**KERNEL)
def grant_row(firing, columns, n_steps: int, k: int, k_enabled: int, out_index, out_cycle, per_cycle, start) -> int:
    """One row's arbitration over its columns' firing cycles (n_steps + 1: never / disabled).

    ``columns``: the row's columns that may fire, in increasing order (the comparators' screen leaves
    these: every other column never fires or is disabled, and takes no slot). Fills ``out_index`` /
    ``out_cycle`` (k slots) with the granted columns in grant order (cycle, then address), −1 and
    n_steps + 1 in slots nothing fired for; returns the stop cycle: that of the ``k_enabled``-th grant
    (the k-counter is set to min(k, enabled columns)), the full ramp when fewer fired, 0 when
    ``k_enabled`` is 0 (the row is not converted). ``per_cycle``, ``start``: scratch of n_steps + 2
    integers."""
    per_cycle[:] = 0
    for i in range(columns.size):
        j = firing[columns[i]]
        if j <= n_steps:
            per_cycle[j] += 1
    # the cycle by which k grants are reached (the arbiter tree grants lower addresses first)
    last = n_steps + 1
    total = 0
    for j in range(1, n_steps + 1):
        total += per_cycle[j]
        if total >= k:
            last = j
            break
    # the slots in (cycle, address) order: a counting sort over the cycles up to the last one
    start[0] = 0
    acc = 0
    for j in range(1, n_steps + 2):
        start[j] = acc
        acc += per_cycle[j]
    for s in range(k):
        out_index[s] = -1
        out_cycle[s] = n_steps + 1
    for i in range(columns.size):
        c = columns[i]
        j = firing[c]
        if j <= last and j <= n_steps and start[j] < k:
            out_index[start[j]] = c
            out_cycle[start[j]] = j
            start[j] += 1
    if k_enabled == 0:
        return 0
    j_k = out_cycle[k_enabled - 1]
    return j_k if j_k <= n_steps else n_steps


def select_topk(firing: np.ndarray, k: int, n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arbiter over (..., n) firing cycles: the k earliest firings, ties to lower addresses.
    Returns (indices, cycles_of_each, stop_cycle).

    ``indices`` are −1 where fewer than k columns fired; ``stop_cycle`` is the cycle of the k-th
    grant (the ramp stops there), or the full ramp when fewer than k fired.
    """
    firing = np.asarray(firing)
    n = firing.shape[-1]
    kk = min(k, n)
    key = firing.astype(np.int64) * n + np.arange(n)
    part = np.argpartition(key, kk - 1, axis=-1)[..., :kk] if kk < n else np.broadcast_to(np.arange(n), key.shape)
    sel_keys = np.take_along_axis(key, part, axis=-1)
    order = np.argsort(sel_keys, axis=-1)
    idx = np.take_along_axis(part, order, axis=-1)
    cyc = np.take_along_axis(firing, idx, axis=-1).astype(np.int64)
    fired = cyc <= n_steps
    idx = np.where(fired, idx, -1)
    stop = np.where(fired[..., -1] & (kk == k), cyc[..., -1], n_steps)
    if kk < k:
        pad = [(0, 0)] * (idx.ndim - 1) + [(0, k - kk)]
        idx = np.pad(idx, pad, constant_values=-1)
        cyc = np.pad(cyc, pad, constant_values=n_steps + 1)
    return idx, cyc, stop


def subtopk_indices(scores: np.ndarray, block_sizes, quotas) -> np.ndarray:
    """Digital reference of sub-top-k (docs/spec.md): each block's own top-k_i, concatenated in
    block order. Ties go to lower indices; no re-ranking across blocks."""
    s = np.asarray(scores)
    out, c0 = [], 0
    for size, kq in zip(block_sizes, quotas):
        block = s[..., c0:c0 + size]
        order = np.argsort(-block, axis=-1, kind="stable")[..., :kq]
        out.append(np.sort(order, axis=-1) + c0)
        c0 += size
    return np.concatenate(out, axis=-1)
