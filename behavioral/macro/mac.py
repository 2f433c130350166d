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

So what element e adds to a bitline is a sum over its pulse scales s of four **pulse terms**
of |q| (``full``, ``share``, ``share·α``, ``share·β`` at w = |q|·scale_s) times four **cell
terms** of the stack it reads (``m``, 0, 0, 0 if it stores 1; 0, 1, Δa, Δs if it stores 0): a
dot product of 4·n_scales terms, computed for all columns at once.

Precision: terms and sums are float32 (a column's ≲ 300 units to ~1e-5 units, ~1e-8 V on the
bitline: 10⁻⁴ of the comparator noise). The slow reference in the tests sums in float64; the
two agree except for decisions within ~1e-7 V of the threshold.

Two ways to the same float32 numbers (:func:`element_units` is the only arithmetic): directly
per query row, or through a **code table** per key set, the element's units for each input code
the rows use, so that a row's MAC is one table read and add per (element, column) (used when a
key set has more rows than distinct codes). A group of rows reads the table element by element
(:func:`add_rows_units_from_table`), so that each element's lines stay in cache while the
group uses them: the table of 6 codes on a 256 × 256 array is 3 MB, more than this machine's
per-core cache, and row by row the MAC waited on memory.
"""
from __future__ import annotations


import numba
import numpy as np

from topkima.behavioral.macro.arrays import N_STACKS
from topkima.behavioral.macro.devices import ArrayDevices
from topkima.behavioral.macro.runtime import JIT, KERNEL
from topkima.behavioral.params import MacroParams


#: the four pulse / cell terms of one pulse scale (module docstring)
TERMS_PER_SCALE = 4
#: the (sign of q: 0 for q > 0, bitline: 0 for RBL_L) each stack is read at (module docstring)
SIGN_SIDE_OF_STACK = ((0, 0), (1, 1), (0, 1), (1, 0))


def pulse_terms(p: MacroParams, scales: tuple[int, ...], linear: bool) -> np.ndarray:
    """(q_max + 1, 4·n_scales) float32: per input magnitude |q|, for each scale, the units a
    pulsed stack takes per cell term: full(w), share(w), share(w)·α(w), share(w)·β(w).
    ``linear`` (the ideal macro): no charge-share packets."""
    width = (np.arange(p.q_max + 1)[:, None] * np.asarray(scales)[None, :]).astype(float)
    full = np.where(width > 0, p.pulse_slope * width + p.pulse_offset_units, 0.0)
    share = np.where(width > 0, p.share(width), 0.0) if not linear else np.zeros_like(width)
    alpha, beta = p.share_mismatch(width)
    terms = np.stack([full, share, share * alpha, share * beta], axis=-1)      # (q, scale, term)
    return np.ascontiguousarray(terms.reshape(p.q_max + 1, -1), dtype=np.float32)


@numba.njit(**KERNEL)
def cell_terms(devices, levels, n, n_scales, out):
    """The cell terms of one key set (``levels`` (d, n_max), columns c < n used):
    ``out[e, sign, 4·s + term, bitline·n + c]`` for the stack that (sign of q, bitline)
    reads in pair s of element e, column c (module docstring)."""
    for e in range(levels.shape[0]):
        level_of_column = levels[e]
        for s in range(n_scales):
            row = e * n_scales + s
            t = TERMS_PER_SCALE * s
            for stack in range(N_STACKS):
                sign, side = SIGN_SIDE_OF_STACK[stack]
                l_cell = stack < 2      # the L cell (stacks 0, 1) stores 1 at digit +1, the R cell at −1
                m = devices.m_stack[row, stack]
                dvt_access = devices.dvt_access_v[row, stack]
                dvt_storage = devices.dvt_storage_v[row, stack]
                full = out[e, sign, t, side * n:]
                share = out[e, sign, t + 1, side * n:]
                share_access = out[e, sign, t + 2, side * n:]
                share_storage = out[e, sign, t + 3, side * n:]
                for c in range(n):
                    level = level_of_column[c]
                    magnitude = level if level > 0 else -level
                    # 1 or 0 (a product, not a branch: the loop vectorises)
                    stores_1 = np.float32(((magnitude >> s) & 1) * ((level > 0) == l_cell))
                    stores_0 = np.float32(1.0) - stores_1
                    full[c] = stores_1 * m[c]
                    share[c] = stores_0
                    share_access[c] = stores_0 * dvt_access[c]
                    share_storage[c] = stores_0 * dvt_storage[c]


@numba.njit(inline="always", **KERNEL)
def element_units(pulse, cells, e, q, n, tmp):
    """``tmp[bitline·n + c]`` = the units element e with input code q ≠ 0 adds to each column
    c < n of the key set: Σ over terms of pulse term × cell term."""
    width = 2 * n                   # both bitlines, n apart: one long loop vectorises best
    sign = 0 if q > 0 else 1
    magnitude = abs(q)
    for x in range(width):
        tmp[x] = 0.0
    for t in range(cells.shape[2]):
        p = pulse[magnitude, t]
        cell = cells[e, sign, t]
        for x in range(width):
            tmp[x] += p * cell[x]


@numba.njit(**KERNEL)
def add_row_units(pulse, cells, q_row, n, units, tmp):
    """A query row's MAC, directly: ``units`` float32, U_L of each of the n columns, then U_R."""
    for e in range(q_row.size):
        q = q_row[e]
        if q == 0:
            continue
        element_units(pulse, cells, e, q, n, tmp)
        for x in range(2 * n):
            units[x] += tmp[x]


@numba.njit(**KERNEL)
def build_code_table(pulse, cells, codes, n_codes, n, table, tmp):
    """The key set's code table: for element e and its ``codes[slot]``, the float32 units at
    ``table[((e·n_codes + slot)·2 + bitline)·n + c]``."""
    d = cells.shape[0]
    for e in range(d):
        for slot in range(n_codes):
            element_units(pulse, cells, e, codes[slot], n, tmp)
            dst = table[(e * n_codes + slot) * 2 * n:]
            for x in range(2 * n):
                dst[x] = tmp[x]


@numba.njit(**KERNEL)
def add_rows_units_from_table(table, slot_of_code, q_max, q, n, n_codes, units):
    """The MAC of query rows ``q`` (rows, d) from their key set's code table, into ``units``
    (rows, 2·n) float32, zeroed: U_L of each of the n columns, then U_R.

    Element by element, each row adds the table's line for its code: the element's lines for
    the codes in use (a few kB) stay in the nearest cache while every row of the group reads
    them, and each row's sums run in element order, as :func:`add_row_units` adds them (the
    same float32 values)."""
    width = 2 * n
    for e in range(q.shape[1]):
        lines = table[e * n_codes * width:]
        for r in range(q.shape[0]):
            code = q[r, e]
            if code == 0:
                continue
            add = lines[slot_of_code[code + q_max] * width:]
            row = units[r]
            for x in range(width):
                row[x] += add[x]


@numba.njit(**KERNEL)
def codes_in_use(q, n_rows, q_max, present, codes, slot_of_code) -> int:
    """The nonzero input codes of rows 0 … n_rows − 1 of ``q`` (rows, d): fills ``codes`` and
    ``slot_of_code`` (code + q_max → its place in ``codes``); returns how many. ``present``: scratch."""
    present[:] = False
    for r in range(n_rows):
        for e in range(q.shape[1]):
            present[q[r, e] + q_max] = True
    n_codes = 0
    for x in range(2 * q_max + 1):
        if present[x] and x != q_max:     # code 0: no pulse
            codes[n_codes] = x - q_max
            slot_of_code[x] = n_codes
            n_codes += 1
    return n_codes


@numba.njit(**JIT)
def mac_units_kernel(devices, pulse, q, levels, n_scales):
    """(rows, 2·n) float32 units of every query row q (rows, d) against one key set (d, n)."""
    d, n = levels.shape
    cells = np.zeros((d, 2, pulse.shape[1], 2 * n), dtype=np.float32)
    cell_terms(devices, levels, n, n_scales, cells)
    out = np.zeros((q.shape[0], 2 * n), dtype=np.float32)
    tmp = np.zeros(2 * n, dtype=np.float32)
    for r in range(q.shape[0]):
        add_row_units(pulse, cells, q[r], n, out[r], tmp)
    return out


def mac_units(devices: ArrayDevices, pulse: np.ndarray, q: np.ndarray, levels: np.ndarray, n_scales: int):
    """(U_L, U_R) float64 (rows, n) at the end of the MAC phase, for range-checked integer codes
    ``q`` (rows, d) and key levels (d, n) (numpy face of the kernels, for fits and studies)."""
    lv = np.ascontiguousarray(levels, np.int8)       # range-checked codes: as the top-k kernels take them
    n = lv.shape[1]
    u = mac_units_kernel(devices, pulse, np.ascontiguousarray(q, np.int8), lv, n_scales)
    return u[:, :n].astype(np.float64), u[:, n:].astype(np.float64)


__all__ = ["N_STACKS", "pulse_terms", "cell_terms", "element_units", "mac_units"]
