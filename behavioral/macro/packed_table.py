"""The tables the kernels interpolate linearly (the discharge curve, the leakage's relative rate,
the overdrive term's integral), each point stored as one 64-bit word: its value and its step to
the next point, two 32-bit fixed-point integers.

Why: the column loops read these tables through computed indices, as vector gathers, which bound
their speed; one word per point halves them (a point's value and step in one gather instead of two).

The fixed point: a table's values are rounded to multiples of its scale s = 2^(e − 30), e the
least integer with max|value| < 2^e, so that every value (|N| ≤ 2³⁰) and every step (|D| < 2³¹) fits
31 bits and a sign; each value moves by at most s/2 ≤ 2⁻³⁰ of the table's largest (0.5 nV on the
~0.9 V discharge curve). The integers N_i (value) and
D_i = N_{i+1} − N_i (step, 0 at the last point) hold exactly what the table's float64 form
(:func:`fixed_point_table`: N·s, D·s) holds, and :func:`interpolate` returns exactly
value_i + (x − i)·step_i of that form: scaling by a power of two is exact, so
s·(N + f·D) and N·s + f·(D·s) round alike (tested against the float64 form, bit for bit).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from topkima.behavioral.macro.runtime import KERNEL

#: bits of a value or a step beyond its sign
FRACTION_BITS = 31
#: the smallest nonzero largest value of a table (its scale stays a normal float)
MIN_LARGEST = 1e-290


def fixed_point_table(values) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(packed words (n,) int64, values (n,), steps (n,) float64 as the words hold them, scale s)
    of a table of finite ``values`` (module docstring)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("a kernel table must be a non-empty 1-D array of finite values")
    largest = float(np.max(np.abs(v)))
    if 0.0 < largest < MIN_LARGEST:     # the scale would be subnormal: its products no longer exact
        raise ValueError(f"a kernel table's largest value must be 0 or at least {MIN_LARGEST:g}, got {largest!r}")
    exponent = (math.frexp(largest)[1] if largest > 0.0 else 0) - (FRACTION_BITS - 1)
    scale = math.ldexp(1.0, exponent)
    n = np.rint(v / scale).astype(np.int64)
    d = np.append(np.diff(n), 0)
    if max(np.abs(n).max(), np.abs(d).max()) >= 2 ** FRACTION_BITS:     # a step of ±2³¹: neighbours of opposite sign at the limit
        raise ValueError("a kernel table's values do not fit its fixed point (a step as large as its largest "
                         "value, of opposite signs)")
    words = (n.astype(np.uint64) << np.uint64(32)) | (d.astype(np.uint64) & np.uint64(0xFFFFFFFF))
    return words.view(np.int64), n * scale, d * scale, scale


@numba.njit(inline="always", **KERNEL)
def interpolate(words, scale: float, x: float) -> float:
    """value_i + (x − i)·step_i at i = ⌊x⌋ of a packed table (``x`` within 0 … its last index, the
    caller's clamp: the kernels run without bounds checks): the value from the word's upper half, the
    step from its lower half (sign-extended). The index is unsigned, so that no code handles negative
    indices (numba's wraparound: it cost the energy pass 2 ms in 14 on 4096 rows)."""
    i = np.uint64(x)        # unsigned: no code for negative indices (x ≥ 0)
    w = words[i]
    return scale * (float(w >> 32) + (x - float(i)) * float((w << 32) >> 32))


@numba.njit(inline="always", **KERNEL)
def grid_index(x: float, last: float):
    """⌊x⌋ clamped to 0 … ``last`` (NaN: 0), as an unsigned index (no code for negative indices): by
    selects, so that the loops around it run as vector instructions."""
    x = x if x > 0.0 else 0.0
    x = x if x < last else last
    return np.uint64(x)
