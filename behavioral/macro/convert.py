"""One array's conversions for a batch of query rows: the compiled kernel that runs the macro's
phases for each row in turn (MAC → ramp ADC → arbiter → energy), and the driver that feeds it.

The kernel is a plain loop over query rows (run on blocks of rows in parallel: each row is one
thread's work and its results do not depend on the thread count) and, within a row, over the key columns,
as the hardware does it: every column converts, the arbiter grants, the ramp stops.

Batches: B batch elements of R query rows each, one key set per element (a key set shared by
all rows: B = 1). Element b uses its first ``n_rows_used[b]`` rows and ``n_keys_used[b]``
columns of this array (the rest is padding: not written, not applied, no energy).
"""
from __future__ import annotations

import numba
import numpy as np

from topkima.behavioral.macro.adc import firing_cycle
from topkima.behavioral.macro.arbiter import grant_row
from topkima.behavioral.macro.energy import row_energy_j
from topkima.behavioral.macro.mac import add_row_units, add_row_units_from_table, build_code_tables
from topkima.behavioral.macro.runtime import JIT, KERNEL, parallel_for

#: float32 entries of the code tables built at once (≈ 32 MB); larger batches go in chunks
TABLE_ENTRIES = 8 * 2 ** 20


@numba.njit(**KERNEL)
def convert_row(b, r, bl, ramp, pulse, em, q, levels, n_keys_used, enable, has_mask, leak, table, table_offset,
                slot_of_code, code_start, q_max, k, conventional, n_steps, t_clk_units, half_window, sigma_noise_v,
                key, batch0, key0, units, per_cycle, start, out_firing, out_index, out_cycle, out_stop, out_energy):
    """One query row r of batch element b, against its key set on one array: MAC, ADC, arbiter,
    energy. ``units``, ``per_cycle``, ``start``: scratch."""
    n = n_keys_used[b]
    # MAC phase: the row's pulses on the key set's cells, (U_L, U_R) of each column in turn
    units[: 2 * n] = 0.0
    if table_offset[b] >= 0:
        add_row_units_from_table(table, table_offset[b], slot_of_code[b], q_max, q[b, r], n,
                                 code_start[b + 1] - code_start[b], units)
    else:
        add_row_units(ramp.devices, pulse, q[b, r], levels[b], n, units)
    # the ramp ADC: each enabled column's comparator
    firing = out_firing[b, r, :n]
    enabled = enable[b, r, :n] if has_mask else enable[0, 0, :n]   # no mask: all True
    n_enabled = 0
    for c in range(n):
        if not enabled[c]:
            continue            # disabled at the arbiter: never requests, not clocked
        n_enabled += 1
        firing[c] = firing_cycle(bl, ramp, c, units[2 * c], units[2 * c + 1], leak[b, c], n_steps, t_clk_units,
                                 half_window, sigma_noise_v, key, batch0 + b, r, key0 + c)
    if has_mask and n_enabled == 0:
        return                  # nothing to convert: no grant, no energy
    # arbiter and k-counter; the ramp stops at the k-th grant
    if conventional:
        stop = n_steps
        grants = n
    else:
        stop = grant_row(firing, n_steps, k, min(k, n_enabled), out_index[b, r], out_cycle[b, r], per_cycle, start)
        grants = k
    out_stop[b, r] = stop
    n_pulsed = 0
    for e in range(q.shape[2]):
        if q[b, r, e] != 0:
            n_pulsed += 1
    out_energy[b, r] = row_energy_j(bl, ramp, em, units, leak[b, :n], firing, enabled, stop, n_pulsed, grants)


@numba.njit(**JIT)
def convert_rows(start_item, stop_item, bl, ramp, pulse, em, q, levels, n_rows_used, n_keys_used, enable, has_mask,
                 leak, table, table_offset, slot_of_code, code_start, q_max, k, conventional, n_steps, t_clk_units,
                 half_window, sigma_noise_v, key, batch0, key0, out_firing, out_index, out_cycle, out_stop,
                 out_energy):
    """:func:`convert_row` for the (batch element, row) items start … stop − 1 (row-major) that
    are used; outputs are pre-filled for the others."""
    n_rows = q.shape[1]
    units = np.zeros(2 * levels.shape[2], dtype=np.float32)
    per_cycle = np.zeros(n_steps + 2, dtype=np.int64)
    start = np.zeros(n_steps + 2, dtype=np.int64)
    for item in range(start_item, stop_item):
        b = item // n_rows
        r = item % n_rows
        if r >= n_rows_used[b] or n_keys_used[b] == 0:
            continue
        convert_row(b, r, bl, ramp, pulse, em, q, levels, n_keys_used, enable, has_mask, leak, table, table_offset,
                    slot_of_code, code_start, q_max, k, conventional, n_steps, t_clk_units, half_window,
                    sigma_noise_v, key, batch0, key0, units, per_cycle, start, out_firing, out_index, out_cycle,
                    out_stop, out_energy)


def _code_tables(q: np.ndarray, n_rows_used: np.ndarray, n_keys_used: np.ndarray, q_max: int):
    """Per key set, the nonzero input codes its rows use and where its table starts (−1: the
    set converts directly, having no more rows than codes)."""
    n_batch, _, d = q.shape
    n_codes = 2 * q_max + 1
    flat = (np.arange(n_batch, dtype=np.int64)[:, None, None] * n_codes + q + q_max).reshape(-1)
    present = np.bincount(flat, minlength=n_batch * n_codes).reshape(n_batch, n_codes) > 0
    present[:, q_max] = False           # code 0: no pulse
    n_slots = present.sum(axis=1)
    slot_of_code = (np.cumsum(present, axis=1) - 1).astype(np.int32)
    code_start = np.concatenate([[0], np.cumsum(n_slots)]).astype(np.int64)
    codes = (np.nonzero(present)[1] - q_max).astype(np.int64)
    size = d * n_slots * n_keys_used * 2
    use = (n_slots < n_rows_used) & (n_keys_used > 0)
    offset = np.where(use, np.cumsum(np.where(use, size, 0)) - size, -1).astype(np.int64)
    return codes, code_start, slot_of_code, offset, int(np.where(use, size, 0).sum())


def convert(bl, ramp, pulse, em, q, levels, n_rows_used, n_keys_used, enable, leak, *, k, conventional, n_steps,
            t_clk_units, half_window, sigma_noise_v, key, key0):
    """One array's conversions (arguments as :func:`convert_rows`; ``q`` (B, R, d) int8, ``levels``
    (B, d, n) int8, ``enable`` (B, R, n) or None). Returns (firing (B, R, n) int8, granted index
    and cycle (B, R, k) int64, stop (B, R) int64, energy (B, R))."""
    n_batch, n_rows, _ = q.shape
    n = levels.shape[2]
    k_slots = n if conventional else k
    firing = np.full((n_batch, n_rows, n), n_steps + 1, dtype=np.int8)
    index = np.full((n_batch, n_rows, k_slots if not conventional else 0), -1, dtype=np.int64)
    cycle = np.full(index.shape, n_steps + 1, dtype=np.int64)
    stop = np.full((n_batch, n_rows), n_steps if conventional else 0, dtype=np.int64)
    energy = np.zeros((n_batch, n_rows))
    has_mask = enable is not None
    mask = enable if has_mask else np.ones((1, 1, n), dtype=np.bool_)
    q_max = pulse.full_units.shape[0] - 1
    b0 = 0
    while b0 < n_batch:
        # as many key sets as keep the code tables within TABLE_ENTRIES
        b1 = n_batch
        codes, code_start, slot_of_code, offset, entries = _code_tables(q[b0:b1], n_rows_used[b0:b1],
                                                                        n_keys_used[b0:b1], q_max)
        while entries > TABLE_ENTRIES and b1 - b0 > 1:
            b1 = b0 + max(1, (b1 - b0) // 2)
            codes, code_start, slot_of_code, offset, entries = _code_tables(q[b0:b1], n_rows_used[b0:b1],
                                                                            n_keys_used[b0:b1], q_max)
        table = np.empty(max(entries, 1), dtype=np.float32)
        lv = levels[b0:b1]
        if entries:
            parallel_for(build_code_tables, (b1 - b0) * lv.shape[1], ramp.devices, pulse, lv, n_keys_used[b0:b1],
                         codes, code_start, offset, table)
        sl = slice(b0, b1)
        parallel_for(convert_rows, (b1 - b0) * n_rows, bl, ramp, pulse, em, q[sl], lv, n_rows_used[sl], n_keys_used[sl],
                     mask[sl] if has_mask else mask, has_mask, leak[sl], table, offset, slot_of_code, code_start,
                     q_max, k, conventional, n_steps, t_clk_units, half_window, sigma_noise_v, key, b0, key0,
                     firing[sl], index[sl] if not conventional else np.zeros((b1 - b0, n_rows, 1), np.int64),
                     cycle[sl] if not conventional else np.zeros((b1 - b0, n_rows, 1), np.int64), stop[sl],
                     energy[sl])
        b0 = b1
    return firing, index, cycle, stop, energy
