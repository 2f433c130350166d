"""Comparator noise as a counter-based random stream: a standard normal per decision, a pure
function of (key, batch element, row, key column, decision slot w in the noise window).

Why counter-based: a decision's noise is then the same whichever thread converts its row, and
whatever padding follows a batch element's real rows and keys (rows and keys are numbered from
the element's first; the element by its place in the call), and it is computed only for decisions near the threshold
(a decision more than :data:`Z_MAX` σ from it cannot flip). The key comes from the caller's
``numpy.random.Generator`` (one draw per top-k call), so a seeded study is reproducible.

The stream: SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014) chained over the
coordinates, then Box–Muller on the two 32-bit halves, u₁ ∈ (0, 1], u₂ ∈ [0, 1):
z = √(−2 ln u₁)·cos(2π u₂). |z| ≤ √(64 ln 2) = 6.660 exactly, so :data:`Z_MAX` bounds every draw.
:func:`standard_normal_py` is the same stream in plain Python (the tests' reference).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from topkima.behavioral.macro.runtime import KERNEL

#: no draw exceeds this in magnitude (√(64 ln 2) = 6.6604 for 32-bit u₁), with margin
Z_MAX = 6.67
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


@numba.njit(inline="always", **KERNEL)
def _mix(x):
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always", **KERNEL)
def row_stream(key, batch: int, row: int):
    """The chain's state after a row's coordinates (shared by every decision of the row)."""
    return _mix(_mix(key ^ np.uint64(batch)) ^ np.uint64(row))


@numba.njit(inline="always", **KERNEL)
def standard_normal_of_row(stream, column: int, decision: int) -> float:
    """The standard normal of one decision of the row whose :func:`row_stream` is ``stream``."""
    h = _mix(stream ^ np.uint64(column))
    h = _mix(h ^ np.uint64(decision))
    u1 = (float(h >> np.uint64(32)) + 1.0) * 2.0 ** -32
    u2 = float(h & np.uint64(0xFFFFFFFF)) * 2.0 ** -32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@numba.njit(inline="always", **KERNEL)
def box_muller_lifts(u1: float, u2: float, margin_v: float, sigma_v: float) -> bool:
    """Whether ``margin_v + sigma_v·z > 0`` for the Box–Muller draw z = √(−2 ln u₁)·cos(2π u₂),
    without its logarithm, square root and cosine where the draw's radius cannot reach the margin.

    Box–Muller: |z| ≤ R = √(−2 ln u₁), and −ln u₁ < (1 − u₁)/u₁ for u₁ < 1 (ln x < x − 1). So
    2(1 − u₁) ≤ u₁·t² (t = margin/σ; tested as 2(1 − u₁)·σ² ≤ u₁·margin², without a division)
    gives R < |t|: |σ·z| < |margin| and the margin's sign decides. 1 − u₁ is exact (u₁ is a
    multiple of 2⁻³²), and the bound's gap, a relative (1 − u₁)/2 ≥ 2⁻³³, stays far above the few
    ulps either side of the test rounds by, even at u₁ = 1 − 2⁻³² (a gate written as u₁·(1 + t²/2) ≥ 1
    rounds 1 + t²/2 and was wrong there for |t| ≈ 2e-5). At u₁ = 1, R = 0 and z = 0: the sign
    decides too. Otherwise the draw itself decides: the same answer as computing z, for every draw
    while σ² is a normal float and margin² does not overflow (σ within 1e-150 … 1e150 V: the
    conversions refuse any other σ; a margin is a few volts at most, and one whose square underflows
    fails the gate and goes to the draw)."""
    if 2.0 * (1.0 - u1) * (sigma_v * sigma_v) <= u1 * (margin_v * margin_v):
        return margin_v > 0.0
    return margin_v + sigma_v * (math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)) > 0.0


@numba.njit(inline="always", **KERNEL)
def decision_uniforms(stream, column: int, decision: int):
    """The two uniforms (u₁ ∈ (0, 1], u₂ ∈ [0, 1)) of one decision of the row whose :func:`row_stream`
    is ``stream``."""
    h = _mix(stream ^ np.uint64(column))
    h = _mix(h ^ np.uint64(decision))
    u1 = (float(h >> np.uint64(32)) + 1.0) * 2.0 ** -32
    u2 = float(h & np.uint64(0xFFFFFFFF)) * 2.0 ** -32
    return u1, u2


@numba.njit(inline="always", **KERNEL)
def noise_lifts_above_zero(stream, column: int, decision: int, margin_v: float, sigma_v: float) -> bool:
    """Whether ``margin_v + sigma_v·z > 0`` for the draw z of this decision of the row whose
    :func:`row_stream` is ``stream`` (:func:`box_muller_lifts` on its uniforms)."""
    u1, u2 = decision_uniforms(stream, column, decision)
    return box_muller_lifts(u1, u2, margin_v, sigma_v)


@numba.njit(inline="always", **KERNEL)
def standard_normal(key, batch: int, row: int, column: int, decision: int) -> float:
    """The standard normal of one comparator decision (module docstring)."""
    return standard_normal_of_row(row_stream(key, batch, row), column, decision)


def _mix_py(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def standard_normal_py(key: int, batch: int, row: int, column: int, decision: int) -> float:
    """:func:`standard_normal` in plain Python integers (the slow reference)."""
    h = _mix_py(key ^ batch)
    h = _mix_py(h ^ row)
    h = _mix_py(h ^ column)
    h = _mix_py(h ^ decision)
    u1 = ((h >> 32) + 1.0) * 2.0 ** -32
    u2 = (h & 0xFFFFFFFF) * 2.0 ** -32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def noise_key(rng: np.random.Generator) -> np.uint64:
    """One call's noise key, drawn from the caller's generator."""
    return np.uint64(rng.integers(0, 2 ** 63, dtype=np.int64))
