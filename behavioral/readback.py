"""How the digital side reads back the scores of the keys the chip kept, and keeps the best of them.

The macro returns, per query row, the granted columns and the ramp cycle each fired in
(SPEC §2: address + crossing cycle = ADC code). The softmax core needs a score per kept key:

* ``"ramp-code"`` (the paper's data path): a key that fired in cycle j lies in
  (top − j·LSB, top − (j−1)·LSB] of its head's ADC window, and is read back as the middle of
  that bin; the softmax core sees the window's resolution (an LSB of up to 4 MAC units).
* ``"exact"`` [ours]: the chip still selects the keys in its ramp ADC; the digital side then
  reads the granted key rows from the SRAM (ordinary reads of the cells the MAC used) and
  computes their exact integer Q·K with the row's query codes: k × d multiply-accumulates per
  query row (5 × 64 against the array's 256 × 64 analog MACs at k = 5, 256 keys). The scores
  are those of ``mode="topk"`` for the same keys, so only the selection is the chip's. Its cost
  per query row is :func:`topkima.behavioral.accelerator.readback.exact_readback_row`.

**Candidates** [ours, issue 14 item 6]: with the exact read-back the k-counter may stop after
k_c = k + m grants instead of k (m ≥ 0). The k_c granted rows are read back exactly and the
digital side keeps the k best exact scores among them (:func:`best_of_candidates`), so a key of
the quantised top-k is lost only if the column's analog error puts it behind k + m others. With
k_c = k nothing is dropped and the result is the plain exact read-back.
"""
from __future__ import annotations

import numpy as np

READBACKS = ("ramp-code", "exact")


def exact_scores(scores_units: np.ndarray, granted: np.ndarray, score_scale) -> np.ndarray:
    """The exact scores of the granted keys: (..., T_q, slots), 0 in empty slots (−1 in ``granted``).

    ``scores_units`` (..., T_q, T_k): the integer q_code·k_code sums (MAC units); ``score_scale``
    broadcastable to (..., T_q, 1): the real score per MAC unit of each row."""
    units = np.take_along_axis(np.broadcast_to(scores_units, (*granted.shape[:-1], scores_units.shape[-1])),
                               np.maximum(granted, 0), axis=-1)
    return np.where(granted >= 0, units * score_scale, 0.0)


def best_of_candidates(scores_units: np.ndarray, granted: np.ndarray, top_k: int) -> np.ndarray:
    """The digital top-k of each row's candidates: (..., T_q, min(top_k, slots)) granted keys.

    ``granted`` (..., T_q, slots): the candidate keys in grant order (−1 = empty slot), as the
    arbiter recorded them (cycle, then column address; arrays with their own quotas one after
    another); ``scores_units`` (..., T_q, T_k): the exact integer Q·K. Keeps the ``top_k`` largest
    exact scores; ties go to the earlier slot (the earlier grant), empty slots come last. The kept
    keys stay in grant order, so with as many slots as ``top_k`` the result is ``granted`` itself."""
    units = np.take_along_axis(np.broadcast_to(scores_units, (*granted.shape[:-1], scores_units.shape[-1])),
                               np.maximum(granted, 0), axis=-1).astype(np.float64)
    rank_key = np.where(granted >= 0, -units, np.inf)        # ascending: best first, empty slots last
    best_slots = np.sort(np.argsort(rank_key, axis=-1, kind="stable")[..., :top_k], axis=-1)
    return np.take_along_axis(granted, best_slots, axis=-1)
