"""Which key sits in which column of the Q·Kᵀ array, and which key wins a tie at the arbiter.

The arbiter grants simultaneous firings to the lower column address, and the k-counter stops the
ramp at the k-th grant (SPEC §2; :mod:`topkima.behavioral.macro.arbiter`). Which key a tie keeps
is therefore set by the order in which the software writes K into the array, a free mapping
choice with no change to the circuit [ours]:

* ``"token"``: key j in column j (token order). In a causal model the oldest visible key holds
  the lowest address and wins ties.
* ``"newest-first"``: each sequence's n written keys in reverse, key j in column n − 1 − j. Among
  the keys a causal row sees (0 … t), newer keys hold lower addresses and win ties: the recent
  tokens, which a causal LM usually needs most. The keys are written once per input as before
  (K is rewritten per input, SPEC §2), so the mapping costs nothing.

The reversal is its own inverse, so the same table maps columns to keys and keys to columns.
Where a row spans several arrays with fixed quotas (non-causal rows over one array's columns),
the order also decides which keys share an array, so it changes the selection beyond ties there.
"""
from __future__ import annotations

import numpy as np

KEY_ORDERS = ("token", "newest-first")


def column_keys(n_keys_written: np.ndarray, n_columns: int, key_order: str) -> np.ndarray:
    """The key index held in each column: (..., n_columns) int64 for ``n_keys_written`` (...,)
    keys written per key set; columns past a set's written keys hold themselves (padding)."""
    if key_order not in KEY_ORDERS:
        raise ValueError(f"key_order must be one of {', '.join(KEY_ORDERS)}, got {key_order!r}")
    col = np.arange(n_columns, dtype=np.int64)
    n = np.asarray(n_keys_written, dtype=np.int64)[..., None]
    if key_order == "token":
        return np.broadcast_to(col, (*n.shape[:-1], n_columns)).copy()
    return np.where(col < n, n - 1 - col, col)


def kth_grant_ties(firing_cycle: np.ndarray, granted_cycle: np.ndarray, n_steps: int) -> np.ndarray:
    """Per row, whether the arbiter's address order decided its last grant: another column fired
    in the cycle of the row's last grant and was not granted.

    ``firing_cycle`` (..., n): each column's firing cycle (n_steps + 1: never, or disabled);
    ``granted_cycle`` (..., slots): the cycles of the granted slots, n_steps + 1 where empty.
    A row with an empty slot granted every column that fired, so it has no tie."""
    filled = granted_cycle <= n_steps
    n_granted = filled.sum(axis=-1)
    full = n_granted == granted_cycle.shape[-1]
    last = np.where(full, granted_cycle[..., -1], 0)
    fired_by_last = (firing_cycle <= last[..., None]).sum(axis=-1)
    return full & (fired_by_last > n_granted)


def kth_grant_ties_by_array(firing_cycle: np.ndarray, granted_cycle: np.ndarray, n_steps: int,
                            bounds=None, quotas=None) -> np.ndarray:
    """:func:`kth_grant_ties` of rows spread over arrays with fixed quotas (each array its own
    k-counter: ``bounds`` its columns (start, stop), ``quotas`` its slots, in the order the granted
    slots are joined): whether the address order decided any array's last grant. ``quotas`` None:
    one k-counter over every column."""
    if quotas is None:
        return kth_grant_ties(firing_cycle, granted_cycle, n_steps)
    ties = np.zeros(firing_cycle.shape[:-1], dtype=bool)
    s0 = 0
    for (c0, c1), quota in zip(bounds, quotas):
        ties |= kth_grant_ties(firing_cycle[..., c0:c1], granted_cycle[..., s0:s0 + quota], n_steps)
        s0 += quota
    return ties
