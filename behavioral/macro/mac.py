"""The MAC phase: PWM query pulses on ternary key cells discharge each column's two bitlines.

Key level k ∈ −K…K of element e is stored as ternary pair digits ``sign(k)·bit_p(|k|)`` (pulse
scales 1, 2, 4 on the 256 × 256 array). A signed input q opens RWL+ (q > 0) or RWL− (q < 0) of
every pair of element e for ``|q|·scale`` PWM units:

* q > 0: RBL_L reads stack 0 (the L cell), RBL_R stack 2 (the R cell);
* q < 0: RBL_R reads stack 1 (the L cell), RBL_L stack 3 (the R cell).

The L cell stores 1 where the digit is +1, the R cell where it is −1. A pulsed stack storing 1
discharges its bitline by ``m·(slope·w + offset)`` nominal-cell units (m: its frozen current
factor); a pulsed stack storing 0 takes the charge-share packet ``share(w)·(1 + α(w)·Δa +
β(w)·Δs)`` (Δa, Δs: its access and storage devices' threshold shifts; α, β from SPICE Monte
Carlo of the packet). Idle stacks leak (:mod:`.bitline`).

Precision: one element's contribution to a column is summed over its pulse scales in float64
and stored as float32; a column's units are summed over elements in float32 (≲ 300 units, so
~1e-5 units or ~1e-8 V on the bitline: 10⁻⁴ of the comparator noise). The slow reference in the
tests sums in float64; the two agree except for decisions within ~1e-7 V of the threshold.

Two ways to the same float32 numbers (:func:`add_element_units` is the only arithmetic):
directly per query row, or through a **code table** per key set, C[element, code, column] for
the input codes the rows use, so that a row's MAC is d·n table reads and adds (used when a key
set has more rows than distinct codes).
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from topkima.behavioral.macro.arrays import N_STACKS
from topkima.behavioral.macro.bitline import N_REPLICA_PORTS
from topkima.behavioral.macro.devices import ArrayDevices
from topkima.behavioral.macro.runtime import JIT, KERNEL
from topkima.behavioral.params import MacroParams


class PulseTable(NamedTuple):
    """Per input magnitude |q| (0 … q_max) and pulse scale: what one pulsed stack takes, in units."""

    full_units: np.ndarray     #: (q_max + 1, n_scales) a stack storing 1: slope·w + offset (× its m)
    share_units: np.ndarray    #: a stack storing 0: share(w) …
    share_da_units: np.ndarray  #: … + share(w)·α(w)·Δa …
    share_ds_units: np.ndarray  #: … + share(w)·β(w)·Δs (per V of threshold shift)
    scales: np.ndarray         #: (n_scales,) pulse scale of each pair


def pulse_table(p: MacroParams, scales: tuple[int, ...], linear: bool) -> PulseTable:
    """The pulse table; ``linear`` (the ideal macro): no charge-share packets."""
    width = (np.arange(p.q_max + 1)[:, None] * np.asarray(scales)[None, :]).astype(float)
    full = np.where(width > 0, p.pulse_slope * width + p.pulse_offset_units, 0.0)
    share = np.where(width > 0, p.share(width), 0.0) if not linear else np.zeros_like(width)
    alpha, beta = p.share_mismatch(width)
    return PulseTable(full, share, share * alpha, share * beta, np.asarray(scales, np.int64))


@numba.njit(inline="always", **KERNEL)
def _stack_units(devices: ArrayDevices, pulse: PulseTable, row: int, stack: int, col: int, magnitude: int,
                 scale: int, stores_one: bool) -> float:
    """Units one pulsed read stack takes (module docstring)."""
    if stores_one:
        return devices.m_stack[row, stack, col] * pulse.full_units[magnitude, scale]
    return (pulse.share_units[magnitude, scale] + pulse.share_da_units[magnitude, scale]
            * devices.dvt_access_v[row, stack, col] + pulse.share_ds_units[magnitude, scale]
            * devices.dvt_storage_v[row, stack, col])


@numba.njit(inline="always", **KERNEL)
def element_units(devices: ArrayDevices, pulse: PulseTable, element: int, q: int, level: int, col: int):
    """(units on RBL_L, units on RBL_R) that element ``element`` with input code ``q`` ≠ 0 adds
    to column ``col`` storing key level ``level``, summed over its pulse scales."""
    n_scales = pulse.scales.size
    magnitude = abs(q)
    u_l = 0.0
    u_r = 0.0
    for s in range(n_scales):
        row = element * n_scales + s
        bit = (abs(level) >> s) & 1
        plus = bit == 1 and level > 0      # the L cell stores 1
        minus = bit == 1 and level < 0     # the R cell stores 1
        if q > 0:
            u_l += _stack_units(devices, pulse, row, 0, col, magnitude, s, plus)
            u_r += _stack_units(devices, pulse, row, 2, col, magnitude, s, minus)
        else:
            u_r += _stack_units(devices, pulse, row, 1, col, magnitude, s, plus)
            u_l += _stack_units(devices, pulse, row, 3, col, magnitude, s, minus)
    return u_l, u_r


@numba.njit(**KERNEL)
def add_row_units(devices, pulse, q_row, levels, n_cols, units):
    """A query row's MAC, directly: ``units`` (2·n_cols,) float32, (U_L, U_R) of each column in
    turn, += each element's contribution."""
    for e in range(q_row.size):
        q = q_row[e]
        if q == 0:
            continue
        for c in range(n_cols):
            u_l, u_r = element_units(devices, pulse, e, q, levels[e, c], c)
            units[2 * c] += np.float32(u_l)
            units[2 * c + 1] += np.float32(u_r)


@numba.njit(**KERNEL)
def add_row_units_from_table(table, offset, slot_of_code, q_max, q_row, n_cols, n_slots, units):
    """A query row's MAC from its key set's code table (same float32 values as :func:`add_row_units`)."""
    for e in range(q_row.size):
        q = q_row[e]
        if q == 0:
            continue
        base = offset + ((e * n_slots + slot_of_code[q + q_max]) * n_cols) * 2
        for x in range(2 * n_cols):     # (U_L, U_R) of each column in turn, as in the table
            units[x] += table[base + x]


@numba.njit(**KERNEL)
def build_code_tables(start, stop, devices, pulse, levels, n_keys, codes, code_start, table_offset, table):
    """Fill each key set's code table: for key set b (levels[b]: (d, n) of which n_keys[b] are
    used), its codes ``codes[code_start[b]:code_start[b + 1]]``, element e and column c, the
    float32 units at ``table_offset[b] + ((e·U + slot)·n_keys[b] + c)·2 + (0: L, 1: R)``.
    Sets with table_offset −1 take the direct path and get no table. Items start … stop − 1 of
    the (key set, element) pairs."""
    d = levels.shape[1]
    for item in range(start, stop):
        b = item // d
        e = item % d
        if table_offset[b] < 0:
            continue
        n = n_keys[b]
        n_slots = code_start[b + 1] - code_start[b]
        for slot in range(n_slots):
            q = codes[code_start[b] + slot]
            base = table_offset[b] + ((e * n_slots + slot) * n) * 2
            for c in range(n):
                u_l, u_r = element_units(devices, pulse, e, q, levels[b, e, c], c)
                table[base + 2 * c] = np.float32(u_l)
                table[base + 2 * c + 1] = np.float32(u_r)


@numba.njit(**JIT)
def mac_units_kernel(devices, pulse, q, levels):
    """(rows, n, 2) float32 units of every query row q (rows, d) against one key set (d, n)."""
    n = levels.shape[1]
    out = np.zeros((q.shape[0], 2 * n), dtype=np.float32)
    for r in range(q.shape[0]):
        add_row_units(devices, pulse, q[r], levels, n, out[r])
    return out.reshape(q.shape[0], n, 2)


def mac_units(devices: ArrayDevices, pulse: PulseTable, q: np.ndarray, levels: np.ndarray):
    """(U_L, U_R) float64 (rows, n) at the end of the MAC phase, for range-checked integer codes
    ``q`` (rows, d) and key levels (d, n) (numpy face of the kernel, for fits and studies)."""
    u = mac_units_kernel(devices, pulse, np.ascontiguousarray(q, np.int64), np.ascontiguousarray(levels, np.int64))
    return u[..., 0].astype(np.float64), u[..., 1].astype(np.float64)


def stored_ones(levels: np.ndarray) -> np.ndarray:
    """Stacks storing 1 per column (Σ over elements of the popcount of |level|), (..., n)."""
    lv = np.abs(np.asarray(levels, np.int64))
    count = np.zeros(lv.shape, np.int64)
    while np.any(lv):
        count += lv & 1
        lv >>= 1
    return count.sum(axis=-2)


def leak_units_per_unit(p: MacroParams, levels: np.ndarray, n_elements: int, n_scales: int, linear: bool) -> np.ndarray:
    """Leakage (units per PWM unit) of each column's bitlines; both carry Σ|digit| stored 1s among
    the 2·elements·scales MAC stacks and the replica ports (none in the ideal macro)."""
    if linear:
        return np.zeros(np.shape(levels)[:-2] + np.shape(levels)[-1:])
    n1 = stored_ones(levels).astype(float)
    n_total = 2 * n_elements * n_scales + N_REPLICA_PORTS
    return p.leak1_units_per_unit * n1 + p.leak0_units_per_unit * (n_total - n1)


__all__ = ["N_STACKS", "PulseTable", "pulse_table", "element_units", "mac_units", "leak_units_per_unit"]
