"""The MAC phase: PWM query pulses on ternary key cells discharge each column's two bitlines.

Key level k ∈ −K…K of element e is stored as ternary pair digits ``sign(k)·bit_p(|k|)`` (pulse
scales 1, 2, 4 on the 256 × 256 array). A signed input q opens RWL+ (q > 0) or RWL− (q < 0) of
every pair of element e for ``|q|·scale`` PWM units:

* q > 0: RBL_L reads stack 0 (the L cell), RBL_R stack 2 (the R cell);
* q < 0: RBL_R reads stack 1 (the L cell), RBL_L stack 3 (the R cell).

The L cell stores 1 where the digit is +1, the R cell where it is −1. A pulsed stack storing 1
discharges its bitline by ``m·(slope·w + offset) + edge`` nominal-cell units (m: its frozen current
factor; edge = E_a·Δa + E_s·Δs: what its wordline's edges take beyond it, per pulse,
``devices.edge_units_per_v``); a
pulsed stack storing 0 takes the charge-share packet ``share(w)·(1 + α(w)·Δa + β(w)·Δs)`` (Δa, Δs:
its access and storage devices' threshold shifts; α, β from SPICE Monte Carlo of the packet).
Both single-pulse charges are what the discharge bench measured one pulse at a time; in the MAC phase,
every wordline starting at once, a pulse takes a little less, ``x₁(w)`` / ``x₀(w)`` = a + b·ln(w)
units (``column.mac_pulses``, :meth:`MacroParams.mac_pulse_excess`), subtracted from ``slope·w + offset``
and from ``share(w)`` in the pulse terms below (no kernel change). Idle stacks leak (:mod:`.bitline`).

So what element e adds to a bitline is a sum over its pulse scales s, in order, of four **pulse
terms** of |q| (``full``, ``share``, ``share·α``, ``share·β`` at w = |q|·scale_s) times the
**cell terms** of the stack it reads: ``m`` if it stores 1, else 1, Δa and Δs. The sums run in
float32, term by term in this order (a zero term adds nothing, exactly, so a stack storing 1
adds ``full·m`` then its edge and one storing 0 adds ``share``, then ``share·α·Δa``, then ``share·β·Δs``).

Precision: float32 (a column's ≲ 300 units to ~1e-5 units, ~1e-8 V on the bitline: 10⁻⁴ of
the comparator noise). The slow reference in the tests sums in float64; the two agree except
for decisions within ~1e-7 V of the threshold.

**Code tables.** A query row's MAC adds, for each element, what its code adds to every column.
Rows share codes (MiniLM's 25 rows per key set use about 8 distinct codes per element), so each
key set gets a table of those lines, one per (element, code in use by that element among the
rows it converts) (:func:`build_code_tables`; the arithmetic is :func:`element_line`), and a row's MAC
is one table read and add per (element, column). A group of rows reads the table eight elements
at a time (:func:`add_rows_units_from_table`), so that those elements' lines stay in the nearest
cache while the group uses them (a 62-code table on a 256 × 256 array is 33 MB).
"""
from __future__ import annotations


import numba
import numpy as np

from topkima.behavioral.macro.devices import ArrayDevices
from topkima.behavioral.macro.runtime import KERNEL, NO_OVERLAP_KERNEL
from topkima.behavioral.params import MacroParams


#: the four pulse terms of one pulse scale (module docstring)
TERMS_PER_SCALE = 4
#: the most pulse scales an array has (a key level of 3 bits: levels −7…7)
MAX_SCALES = 3
#: the stack read at (sign of q: 0 for q > 0, bitline: 0 for RBL_L) (module docstring)
STACK_OF_SIGN_SIDE = ((0, 2), (3, 1))


def check_pulse_scales(n_scales: int) -> None:
    """A ValueError unless the code tables take ``n_scales`` pulse scales (1 … MAX_SCALES)."""
    if not 1 <= n_scales <= MAX_SCALES:
        raise ValueError(f"an array's key cells take 1 to {MAX_SCALES} pulse scales (key levels of up to "
                         f"{MAX_SCALES} bits), got {n_scales}")


def pulse_terms(p: MacroParams, scales: tuple[int, ...], linear: bool) -> np.ndarray:
    """(q_max + 1, 4·n_scales) float32: per input magnitude |q|, for each scale, the units a
    pulsed stack takes per cell term: full(w), share(w), share(w)·α(w), share(w)·β(w).
    ``linear`` (the ideal macro): no charge-share packets."""
    check_pulse_scales(len(scales))
    width = (np.arange(p.q_max + 1)[:, None] * np.asarray(scales)[None, :]).astype(float)
    excess_1, excess_0 = p.mac_pulse_excess(width) if not linear else (0.0, 0.0)
    full = np.where(width > 0, p.pulse_slope * width + p.pulse_offset_units - excess_1, 0.0)
    share = np.where(width > 0, p.share(width) - excess_0, 0.0) if not linear else np.zeros_like(width)
    alpha, beta = p.share_mismatch(width)
    terms = np.stack([full, share, share * alpha, share * beta], axis=-1)      # (q, scale, term)
    return np.ascontiguousarray(terms.reshape(p.q_max + 1, -1), dtype=np.float32)


@numba.njit(inline="always", **KERNEL)
def element_line(devices, pulse, level_of_column, e, n_scales, q, n, line):
    """``line[bitline·n + c]`` = the float32 units element e with input code q ≠ 0 adds to
    column c < n, whose key level is ``level_of_column[c]`` (module docstring).

    Column by column, the pulse scales' terms are summed in a register, in scale order (the
    scale loop runs MAX_SCALES times and is unrolled; a scale beyond ``n_scales`` reads the last
    one's cells and adds nothing), so that the column loop runs as vector instructions."""
    sign = 0 if q > 0 else 1
    magnitude = abs(q)
    edge_access, edge_storage = devices.edge_units_per_v[0], devices.edge_units_per_v[1]
    for side in range(2):
        stack = STACK_OF_SIGN_SIDE[sign][side]
        l_cell = stack < 2      # the L cell (stacks 0, 1) stores 1 at digit +1, the R cell at −1
        for c in range(n):
            level = level_of_column[c]
            acc = np.float32(0.0)
            for s in range(MAX_SCALES):
                s_read = min(s, n_scales - 1)
                row = e * n_scales + s_read
                full = pulse[magnitude, TERMS_PER_SCALE * s_read]
                share = pulse[magnitude, TERMS_PER_SCALE * s_read + 1]
                share_access = pulse[magnitude, TERMS_PER_SCALE * s_read + 2]
                share_storage = pulse[magnitude, TERMS_PER_SCALE * s_read + 3]
                stores_1 = (((level if level > 0 else -level) >> s) & 1) == 1 and (level > 0) == l_cell
                # both sums, then the one the cell's state selects (a select, not a branch: vectorises)
                d_access = devices.dvt_access_v[row, stack, c]
                d_storage = devices.dvt_storage_v[row, stack, c]
                if_1 = acc + full * devices.m_stack[row, stack, c]
                if_1 += edge_access * d_access      # the pulse's edges, whatever its width
                if_1 += edge_storage * d_storage
                if_0 = acc + share
                if_0 += share_access * d_access
                if_0 += share_storage * d_storage
                added = if_1 if stores_1 else if_0
                acc = added if s < n_scales else acc
            line[side * n + c] = acc


@numba.njit(**KERNEL)
def code_lines(q, q_max, line_of) -> int:
    """Number the lines of a key set's code tables for query rows ``q`` (rows, d): element e's
    line for code x is ``line_of[e, x + q_max]`` (−1 where no row uses x at e; code 0 has no
    line: no pulse), lines in (element, code) order. Returns how many lines."""
    n_lines = 0
    for e in range(q.shape[1]):
        line_of[e, :] = -1
        lo = line_of.shape[1]
        hi = -1
        for r in range(q.shape[0]):
            x = q[r, e] + q_max
            line_of[e, x] = 0       # (code 0 is unmarked below)
            lo = min(lo, x)
            hi = max(hi, x)
        line_of[e, q_max] = -1
        for x in range(lo, hi + 1):     # the codes in use, numbered in order (without branches)
            used = line_of[e, x] == 0
            line_of[e, x] = n_lines if used else -1
            n_lines += used
    return n_lines


@numba.njit(**NO_OVERLAP_KERNEL)
def build_code_tables(devices, pulse, levels, n, n_scales, q_max, line_of, table):
    """The key set's code tables (``levels`` (d, n_max), columns c < n): each line numbered by
    :func:`code_lines` at ``table[line·2n …]``, ``table`` long enough."""
    width = 2 * n
    for e in range(levels.shape[0]):
        for x in range(line_of.shape[1]):
            i = line_of[e, x]
            if i >= 0:
                element_line(devices, pulse, levels[e], e, n_scales, x - q_max, n, table[i * width:])


#: the elements whose lines a row adds in one pass over its units (in element order)
ELEMENTS_PER_PASS = 8


@numba.njit(inline="always", **KERNEL)
def _line_added(table, line_of, q_max, q_row, e, width, zero):
    """What element e adds to a row whose codes are ``q_row``: its code's line, or zeros (code 0, or
    no element e)."""
    if e >= q_row.size or q_row[e] == 0:
        return zero
    start = line_of[e, q_row[e] + q_max] * width
    return table[start: start + width]


@numba.njit(**NO_OVERLAP_KERNEL)
def add_rows_units_from_table(table, line_of, q_max, q, n, zero_line, units):
    """The MAC of query rows ``q`` (rows, d) from their key set's code tables, into ``units``
    (rows, 2·n) float32, zeroed: U_L of each of the n columns, then U_R.

    :data:`ELEMENTS_PER_PASS` elements at a time, each row adds their lines to its units in one
    pass, in element order (an element whose code is 0 adds ``zero_line``, (≥ 2·n,) zeros: +0 leaves
    every sum as it is, a sum of these terms never being −0): the row's units are read and written
    once per eight lines (they come from the second-level cache: a group's units are ~0.5 MB, and the
    traffic bounds this loop; eight lines a pass ran 0.8 ms faster than four on 4096 rows), and the
    eight elements' lines (a few kB each) stay in cache while every row of the group reads them."""
    width = 2 * n
    zero = zero_line[:width]
    for e0 in range(0, q.shape[1], ELEMENTS_PER_PASS):
        for r in range(q.shape[0]):
            a = _line_added(table, line_of, q_max, q[r], e0, width, zero)
            b = _line_added(table, line_of, q_max, q[r], e0 + 1, width, zero)
            c = _line_added(table, line_of, q_max, q[r], e0 + 2, width, zero)
            f = _line_added(table, line_of, q_max, q[r], e0 + 3, width, zero)
            g = _line_added(table, line_of, q_max, q[r], e0 + 4, width, zero)
            h = _line_added(table, line_of, q_max, q[r], e0 + 5, width, zero)
            o = _line_added(table, line_of, q_max, q[r], e0 + 6, width, zero)
            p = _line_added(table, line_of, q_max, q[r], e0 + 7, width, zero)
            row = units[r]
            for x in range(width):
                acc = row[x]
                acc += a[x]
                acc += b[x]
                acc += c[x]
                acc += f[x]
                acc += g[x]
                acc += h[x]
                acc += o[x]
                acc += p[x]
                row[x] = acc


def mac_units(devices: ArrayDevices, pulse: np.ndarray, q: np.ndarray, levels: np.ndarray, n_scales: int):
    """(U_L, U_R) float64 (rows, n) at the end of the MAC phase, for range-checked integer codes
    ``q`` (rows, d) and key levels (d, n) (numpy face of the kernels, for fits and studies)."""
    check_pulse_scales(n_scales)
    lv = np.require(levels, np.int8, ["C", "W"])     # range-checked codes, as the top-k kernels take them (writable: one compiled type)
    n = lv.shape[1]
    q8 = np.require(q, np.int8, ["C", "W"])
    q_max = pulse.shape[0] - 1
    line_of = np.zeros((lv.shape[0], 2 * q_max + 1), dtype=np.int64)
    table = np.zeros(code_lines(q8, q_max, line_of) * 2 * n, dtype=np.float32)
    build_code_tables(devices, pulse, lv, n, n_scales, q_max, line_of, table)
    u = np.zeros((q8.shape[0], 2 * n), dtype=np.float32)
    add_rows_units_from_table(table, line_of, q_max, q8, n, np.zeros(2 * n, dtype=np.float32), u)
    return u[:, :n].astype(np.float64), u[:, n:].astype(np.float64)


__all__ = ["pulse_terms", "element_line", "code_lines", "build_code_tables", "mac_units"]
