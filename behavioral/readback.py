"""How the digital side reads back the scores of the k keys the chip kept.

The macro returns, per query row, the k granted columns and the ramp cycle each fired in
(SPEC §2: address + crossing cycle = ADC code). The softmax core needs a score per kept key:

* ``"ramp-code"`` (the paper's data path): a key that fired in cycle j lies in
  (top − j·LSB, top − (j−1)·LSB] of its head's ADC window, and is read back as the middle of
  that bin; the softmax core sees the window's resolution (an LSB of up to 4 MAC units).
* ``"exact"`` [ours]: the chip still selects the k keys in its ramp ADC; the digital side then
  reads the k granted key rows from the SRAM (ordinary reads of the cells the MAC used) and
  computes their exact integer Q·K with the row's query codes: k × d multiply-accumulates per
  query row (5 × 64 against the array's 256 × 64 analog MACs at k = 5, 256 keys). The scores
  are those of ``mode="topk"`` for the same keys, so only the selection is the chip's. Its cost
  per query row is :func:`topkima.behavioral.accelerator.readback.exact_readback_row`.
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
