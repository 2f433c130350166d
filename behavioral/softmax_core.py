"""The softmax core: fixed-point base-2 exponentials of the kept scores and one reciprocal per
row, A quantised to 5 bits [our design; the paper gives A 5 bit and T_nl = 6.5 ns per nonlinear
operation, not the arithmetic]. :class:`SoftmaxCore` is the numpy definition (any array of
rows); :meth:`SoftmaxCore.codes` computes the same A codes for the topkima path's few slots per
row in one compiled pass (its test compares the two)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from topkima.behavioral.macro.runtime import JIT

NEG_INF = -np.inf


@dataclass(frozen=True)
class SoftmaxCore:
    """Fixed-point softmax over the kept scores [our design; the paper gives A 5 bit and
    T_nl = 6.5 ns per nonlinear operation, not the arithmetic].

    x = (s − max s)·log₂e is rounded to ``x_frac_bits`` fractional bits; 2^x = LUT[frac]·2^⌊x⌋
    with a ``lut_bits``-bit mantissa table and a right shift (x is clamped at −``max_shift``; a
    shift beyond ``lut_bits`` + 1 already gives 0); the sum is exact in integers; A = e·⌊2^recip_bits / Σe⌋ / 2^recip_bits,
    rounded to ``a_bits`` unsigned (codes 0…2^a_bits − 1, A = code / (2^a_bits − 1)).
    """

    x_frac_bits: int = 6
    lut_bits: int = 8
    max_shift: int = 16
    recip_bits: int = 16
    a_bits: int = 5

    def __call__(self, scores: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """Attention weights over the last axis; 0 where not ``kept`` (rows with none: all 0)."""
        s = np.where(kept, scores, NEG_INF)
        s_max = _reduce_rows(np.maximum, s)
        s_max = np.where(np.isfinite(s_max), s_max, 0.0)
        x = np.where(kept, (scores - s_max) * np.log2(np.e), 0.0)
        one = 1 << self.x_frac_bits
        x_fx = np.maximum(np.rint(x * one).astype(np.int64), -self.max_shift * one)
        ipart = np.floor_divide(x_fx, one)                          # ≤ 0
        frac = x_fx - ipart * one                                   # 0 … one − 1
        lut = np.rint(2.0 ** (np.arange(one) / one) * (1 << self.lut_bits)).astype(np.int64)
        e = np.where(kept, lut[frac] >> (-ipart), 0)
        total = _reduce_rows(np.add, e)
        recip = np.where(total > 0, (1 << self.recip_bits) // np.maximum(total, 1), 0)
        a_max = (1 << self.a_bits) - 1
        a_code = np.clip(np.rint(e * recip * a_max / (1 << self.recip_bits)), 0, a_max)
        return a_code / a_max

    def codes(self, scores: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """The A codes (0 … 2^a_bits − 1, as floats) of ``self(scores, kept)`` on (…, slots)
        arrays, in one compiled pass (the topkima path's k granted slots per row)."""
        one = 1 << self.x_frac_bits
        lut = np.rint(2.0 ** (np.arange(one) / one) * (1 << self.lut_bits)).astype(np.int64)
        s = np.ascontiguousarray(scores, dtype=np.float64)
        k = np.ascontiguousarray(np.broadcast_to(kept, s.shape), dtype=np.bool_)
        out = np.empty(s.shape)
        _softmax_codes(s.reshape(-1, max(s.shape[-1], 1)), k.reshape(-1, max(s.shape[-1], 1)), np.log2(np.e), one,
                       self.max_shift, lut, 1 << self.recip_bits, (1 << self.a_bits) - 1,
                       out.reshape(-1, max(s.shape[-1], 1)))
        return out



def _reduce_rows(ufunc, x: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(x, axis=-1, keepdims=True)``; rows of ≤ 16 entries (the k kept scores)
    column by column, as numpy reduces short rows one at a time (~15× slower). For max and
    integer sums, where the order of the operations does not change the result."""
    if not 0 < x.shape[-1] <= 16:
        return ufunc.reduce(x, axis=-1, keepdims=True)
    return functools.reduce(ufunc, np.moveaxis(x, -1, 0))[..., None]


@numba.njit(**JIT)
def _softmax_codes(scores, kept, log2e, one, max_shift, lut, recip_one, a_max, out):
    """:meth:`SoftmaxCore.codes` per row of ``scores`` (rows, slots): the numpy definition's
    arithmetic, entry by entry (the integer sum and the maximum do not depend on the order)."""
    e = np.zeros(scores.shape[1], dtype=np.int64)
    for r in range(scores.shape[0]):
        s_max = -np.inf
        for j in range(scores.shape[1]):
            if kept[r, j] and scores[r, j] > s_max:
                s_max = scores[r, j]
        if not np.isfinite(s_max):
            s_max = 0.0
        total = 0
        for j in range(scores.shape[1]):
            e[j] = 0
            if kept[r, j]:
                x_fx = max(np.int64(np.rint((scores[r, j] - s_max) * log2e * one)), -max_shift * one)
                ipart = x_fx // one
                e[j] = lut[x_fx - ipart * one] >> (-ipart)
                total += e[j]
        recip = recip_one // max(total, 1) if total > 0 else 0
        for j in range(scores.shape[1]):
            out[r, j] = min(max(np.rint(e[j] * recip * a_max / recip_one), 0.0), float(a_max)) if kept[r, j] else 0.0
