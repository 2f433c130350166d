"""One array's conversions for a batch of query rows: the compiled kernel that runs the macro's
phases (MAC → ramp ADC → arbiter → energy), and the driver that feeds it.

The kernel runs over groups of consecutive query rows of one key set (blocks of rows in parallel:
each row's results do not depend on the thread count): the group's MAC phase first (its key set
written into the array once), then each row in turn (:func:`convert_group`) and, within a row, over
the key columns, as the hardware does it: every column converts, the arbiter grants, the ramp stops.

Batches: B batch elements of R query rows each, one key set per element (a key set shared by
all rows: B = 1). Element b uses its first ``n_rows_used[b]`` rows and ``n_keys_used[b]``
columns of this array (the rest is padding: not written, not applied, no energy). Each element
converts under one ADC window of the same chip (:class:`Windows`: e.g. one per attention head),
and its comparator noise has its own coordinates (a key and a batch index: :mod:`.noise`).
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from topkima.behavioral.macro.adc import (RampColumns, column_extremes, firing_cycles_by_scan,
                                          firing_cycles_where_g_rises, g_rises_listed, margin_ceilings_v,
                                          margin_headroom_v, margins_at_cycles)
from topkima.behavioral.macro.arbiter import grant_row
from topkima.behavioral.macro.bitline import BitlineModel, column_leak
from topkima.behavioral.macro.devices import ArrayDevices
from topkima.behavioral.macro.energy import EnergyModel, row_energy_j
from topkima.behavioral.macro.mac import (TERMS_PER_SCALE, add_rows_units_from_table, build_code_tables,
                                          check_pulse_scales, code_lines)
from topkima.behavioral.macro.noise import Z_MAX
from topkima.behavioral.macro.runtime import KERNEL, NO_OVERLAP_KERNEL, parallel_for


@numba.njit(**NO_OVERLAP_KERNEL)
def fire_comparators(bl, ramp, units, n_wide, n, leak, headroom, enabled, one_mask, n_steps, t_clk_units, half_window,
                     sigma_noise_v, key, batch, row0, key0, firing, n_enabled, near, near_g, flat, listed,
                     listed_start) -> None:
    """The ramp cycle each enabled column c < n of a group of rows fires in: the group's row r is row
    ``row0`` + r of ``firing`` (left as it is for a disabled column: it never requests the arbiter and is
    not clocked), of ``enabled`` (or its row 0 for every row, ``one_mask``) and of the noise, and its
    bitlines' units are ``units[r, c]`` (U_L) and ``units[r, n_wide + c]`` (U_R). How many columns each row
    enables goes into ``n_enabled`` (rows,), and the columns that may fire (those the screen below
    leaves), row r's in increasing order, into ``listed[listed_start[r] : listed_start[r + 1]]`` (the
    arbiter looks at these only: every other column of the row never fires or is disabled).

    A column whose margin's ceiling (:func:`.adc.margin_ceiling_v`, two points of the curve;
    ``headroom`` (n,) its columns' :func:`.adc.margin_headroom_v`) lies more than Z_MAX·σ below the
    threshold is done first: none of its decisions can fire (most of a top-k's columns). The others
    are listed; then, for the whole group, whether g surely rises (:func:`.adc.g_rises`), and where it
    does, the last decision g(n_steps): where that lies more than Z_MAX·σ below the threshold, the
    column is done here (g(n_steps) bounds its decisions). The columns near or above the threshold
    there, and those on the flat end of the discharge curve, are found by one call each for the whole
    group (a call carries the bitline and ramp models: ~80 ns). The ceilings, the rise test and
    g(n_steps) are each one pass without branches over a row or a list (vector gathers).
    ``near`` (4, rows·n) int64, ``near_g`` (4, rows·n) float, ``flat`` (2, rows·n) int64: scratch. Its
    arrays never overlap one another (the lists are distinct arrays or distinct rows of one): it
    compiles with ``noalias``, so that the ceiling pass inlined here runs as vector gathers."""
    size = units.shape[0] * n      # (no bounds checks in the kernels: short scratch would be overrun)
    if (near.shape[0] < 4 or near_g.shape[0] < 4 or flat.shape[0] < 2 or min(near.shape[1], near_g.shape[1], flat.shape[1],
                                                                              listed.size) < size
            or listed_start.size < units.shape[0] + 1):
        raise ValueError("fire_comparators: scratch too small (near, near_g (4, rows·n), flat (2, rows·n), listed "
                         "(rows·n,), listed_start (rows + 1,))")
    n_listed = 0
    sure_v = Z_MAX * sigma_noise_v
    # (the lists' rows are free until the rows are done: each row's ceilings in turn, and per column
    # what the ceiling adds to RBL_L)
    ceiling, leak_max, ramp_end = near_g[1, :n], near_g[2, :n], near_g[0, :n]
    column_extremes(bl, ramp, leak, n_steps, leak_max, ramp_end)
    for r in range(units.shape[0]):
        listed_start[r] = n_listed
        row_enabled = enabled[0] if one_mask else enabled[row0 + r]
        margin_ceilings_v(bl, units[r, :n], units[r, n_wide:n_wide + n], leak_max, ramp_end, ramp.u_cal_units,
                          headroom, ceiling)
        count = 0
        for c in range(n):
            if not row_enabled[c]:
                continue
            count += 1
            # (the ceiling takes leakage as lowering the bitlines: a negative or NaN leakage takes the full path)
            if leak[c] >= 0.0 and ceiling[c] <= -sure_v:
                firing[row0 + r, c] = n_steps + 1      # never fires
                continue
            flat[0, n_listed] = r
            flat[1, n_listed] = c
            listed[n_listed] = c
            n_listed += 1
        n_enabled[r] = count
    listed_start[units.shape[0]] = n_listed
    # the listed columns where g surely rises go to the near list, the others stay (in order) on the flat one
    rises = near[2, :n_listed]
    g_rises_listed(bl, ramp, units, n_wide, leak, flat[0, :n_listed], flat[1, :n_listed], n_steps, t_clk_units, rises)
    n_near = 0
    n_flat = 0
    for i in range(n_listed):
        if rises[i]:
            near[0, n_near] = flat[0, i]
            near[1, n_near] = flat[1, i]
            n_near += 1
        else:
            flat[0, n_flat] = flat[0, i]
            flat[1, n_flat] = flat[1, i]
            n_flat += 1
    # where g rises: g(n_steps) bounds the column's decisions
    g_last = near_g[1, :n_near]
    for i in range(n_near):
        rises[i] = n_steps      # (read: from here on the cycle each listed column's g is taken at)
    margins_at_cycles(bl, ramp, units, n_wide, leak, near[0, :n_near], near[1, :n_near], rises[:n_near], g_last)
    n_kept = 0
    for i in range(n_near):
        if g_last[i] <= -sure_v:
            firing[row0 + near[0, i], near[1, i]] = n_steps + 1   # never fires, noise or not (σ = 0: not above the threshold)
        else:
            near[0, n_kept] = near[0, i]
            near[1, n_kept] = near[1, i]
            near_g[0, n_kept] = g_last[i]
            n_kept += 1
    n_near = n_kept
    if n_near > 0:
        firing_cycles_where_g_rises(bl, ramp, units, n_wide, leak, near[0, :n_near], near[1, :n_near], near_g[0, :n_near],
                                    n_steps, t_clk_units, half_window, sigma_noise_v, key, batch, row0, key0, firing,
                                    near[2, :n_near], near_g[1, :n_near], near_g[2, :n_near], near[3, :n_near],
                                    near_g[3, :n_near])
    if n_flat > 0:
        firing_cycles_by_scan(bl, ramp, units, n_wide, leak, flat[0, :n_flat], flat[1, :n_flat], n_steps,
                              t_clk_units, half_window, sigma_noise_v, key, batch, row0, key0, firing, near_g[1, :n_flat],
                              near[0, :n_flat])


@numba.njit(**KERNEL)
def pulsed_elements(q_row) -> int:
    """How many of a query row's elements pulse their wordlines (code ≠ 0)."""
    n = 0
    for e in range(q_row.size):
        if q_row[e] != 0:
            n += 1
    return n


@numba.njit(inline="always", **KERNEL)
def convert_group(b, r0, r1, bl, ramp, em, q, n_keys_used, enable, has_mask, leak, headroom, k, conventional,
                  with_energy, n_steps, t_clk_units, half_window, sigma_noise_v, key, noise_batch, key0, group, n_wide,
                  s, out):
    """Query rows r0 … r1 − 1 of batch element b after their MAC phase (``group`` (r1 − r0, 2·n_wide): U_L and
    U_R of each row's columns; ``leak`` (n,) their leakage, ``headroom`` (n,) their comparators'
    :func:`.adc.margin_headroom_v`): the ramp ADC of every row's columns, then row by row the arbiter and
    energy, under the window that ``bl``, ``ramp``, ``em``, ``half_window`` describe; noise at (``key``,
    ``noise_batch``); energy only ``with_energy``. ``s``: the block's :class:`Scratch`; ``out``: the
    call's :class:`Outputs`. Inlined into :func:`convert_rows` (one compiled function fewer: its
    code would otherwise be optimised and emitted once more on its own)."""
    n = n_keys_used[b]
    # the ramp ADC: each enabled column's comparator (no mask: one row, all True)
    fire_comparators(bl, ramp, group, n_wide, n, leak, headroom, enable[b] if has_mask else enable[0], not has_mask,
                     n_steps, t_clk_units, half_window, sigma_noise_v, key, noise_batch, r0, key0, out.firing[b],
                     s.n_enabled, s.near, s.near_g, s.flat, s.listed, s.listed_start)
    for r in range(r0, r1):
        if has_mask and s.n_enabled[r - r0] == 0:
            continue                # nothing to convert: no grant, no energy
        firing = out.firing[b, r, :n]
        # arbiter and k-counter; the ramp stops at the k-th grant
        if conventional:
            stop = n_steps
            grants = n
        else:
            stop = grant_row(firing, s.listed[s.listed_start[r - r0]:s.listed_start[r - r0 + 1]], n_steps, k,
                             min(k, s.n_enabled[r - r0]), out.index[b, r], out.cycle[b, r], s.per_cycle, s.start)
            grants = k
        out.stop[b, r] = stop
        if with_energy:
            enabled = enable[b, r, :n] if has_mask else enable[0, 0, :n]
            out.energy[b, r] = row_energy_j(bl, ramp, em, group[r - r0, :n], group[r - r0, n_wide:n_wide + n], leak,
                                            firing, enabled, stop, pulsed_elements(q[b, r]), grants, s.energy)


#: the comparator noise σ a conversion takes (V), besides 0: the noise gate squares σ and the margins
#: (:func:`.noise.box_muller_lifts`), which must stay normal floats (the calibrated σ is ~3e-4 V)
SIGMA_NOISE_MIN_V = 1e-150
SIGMA_NOISE_MAX_V = 1e150

#: the MAC runs over the key columns rounded up to a multiple of this (zero-level columns beyond
#: the key set's, whose units nobody reads): the compiled column loops then run as vector
#: instructions, which they do not below 16 columns
LANES = 16

#: query rows whose MAC runs together (their units: 256 rows × 2 KB on a 256-column array)
ROWS_PER_GROUP = 256


class Scratch(NamedTuple):
    """One block's working arrays (:func:`scratch_of_block`), allocated before the kernel runs: the
    kernel allocates nothing (no reference counting in it)."""

    units: np.ndarray       #: (ROWS_PER_GROUP · 2 · n_max,) float32: the group's MAC units
    per_cycle: np.ndarray   #: (n_steps + 2,) int64: the arbiter's (:func:`.arbiter.grant_row`)
    start: np.ndarray       #: (n_steps + 2,) int64: the arbiter's
    n_enabled: np.ndarray   #: (ROWS_PER_GROUP,) int64: enabled columns per row (:func:`fire_comparators`)
    near: np.ndarray        #: (4, ROWS_PER_GROUP · n_max) int64: :func:`fire_comparators`' lists
    near_g: np.ndarray      #: (4, ROWS_PER_GROUP · n_max) float64
    flat: np.ndarray        #: (2, ROWS_PER_GROUP · n_max) int64
    listed: np.ndarray      #: (ROWS_PER_GROUP · n_max,) int64: the columns that may fire, row by row …
    listed_start: np.ndarray  #: (ROWS_PER_GROUP + 1,) int64: … where each row's start
    energy: np.ndarray      #: (7, n_max) float64: the energy pass's (:func:`.energy.row_energy_j`)
    line_of: np.ndarray     #: (d, 2·q_max + 1) int64: the code tables' line numbers (:func:`.mac.code_lines`)
    table: np.ndarray       #: (d · 2·q_max · 2 · n_max,) float32: the code tables, as many lines as can be
    leak: np.ndarray        #: (n_max,) float64: the key set's columns' leakage
    zero_line: np.ndarray   #: (2·n_max,) float32 zeros: what an element whose code is 0 adds to a row


def scratch_of_block(d: int, q_max: int, n_max: int, n_steps: int) -> Scratch:
    """:class:`Scratch` for key sets of ``d`` elements and up to ``n_max`` columns. The table holds
    every line a key set can have (each element's 2·q_max non-zero codes); it is not zeroed: a line
    is written before any row reads it."""
    lanes = ROWS_PER_GROUP * n_max
    return Scratch(np.zeros(ROWS_PER_GROUP * 2 * n_max, dtype=np.float32), np.zeros(n_steps + 2, dtype=np.int64),
                   np.zeros(n_steps + 2, dtype=np.int64), np.zeros(ROWS_PER_GROUP, dtype=np.int64),
                   np.zeros((4, lanes), dtype=np.int64), np.zeros((4, lanes)), np.zeros((2, lanes), dtype=np.int64),
                   np.zeros(lanes, dtype=np.int64), np.zeros(ROWS_PER_GROUP + 1, dtype=np.int64),
                   np.zeros((7, n_max)), np.zeros((d, 2 * q_max + 1), dtype=np.int64),
                   np.empty(d * 2 * q_max * 2 * n_max, dtype=np.float32), np.zeros(n_max),
                   np.zeros(2 * n_max, dtype=np.float32))


class Outputs(NamedTuple):
    """A call's results (:func:`convert`), pre-filled for the items not converted."""

    firing: np.ndarray      #: (B, R, n) int64: each column's firing cycle
    index: np.ndarray       #: (B, R, slots) int64: granted key (−1: empty slot)
    cycle: np.ndarray       #: (B, R, slots) int64: its cycle
    stop: np.ndarray        #: (B, R) int64: the ramp's stop cycle
    energy: np.ndarray      #: (B, R) float64 (NaN without the energy pass)


class Windows(NamedTuple):
    """The ADC windows a call's batch elements convert under, on one array of one chip. A window
    sets the calibration cells and pulse (U_cal, n_cal) and the ramp step (the ramp's units per
    cycle), hence the noise half-window; the bitline model, the devices and the rest of the
    energy model are the chip's, whatever the window."""

    bitlines: BitlineModel
    energy: EnergyModel             #: window 0's (n_cal per window below)
    devices: ArrayDevices
    n_cal: np.ndarray               #: (W,) int64
    u_cal_units: np.ndarray         #: (W, n_cols) as RampColumns, per window
    u_ramp_after_units: np.ndarray  #: (W, n_cols, n_steps + 1)
    u_ramp_at_cycle_units: np.ndarray  #: (W, n_steps + 1, n_cols): the same, cycle by cycle
    step_min_units: np.ndarray      #: (W, n_cols)
    step_max_units: np.ndarray      #: (W, n_cols)
    half_window: np.ndarray         #: (W,) int64
    headroom_v: np.ndarray          #: (n_cols,) the comparators' :func:`.adc.margin_headroom_v` (every window's)


def windows_of(chips, array_index: int) -> Windows:
    """:class:`Windows` of ``chips`` (:class:`~.chip.ChipInstance` s of one chip, one per window) on one array."""
    first = chips[0]
    for c in chips[1:]:
        same = all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
                   for x, y in zip(c.bitlines, first.bitlines))
        if not same or c.energy._replace(n_cal=0) != first.energy._replace(n_cal=0):
            raise ValueError("the chips' windows do not share one bitline and energy model: not one chip's windows")
    ramps = [c.ramp(array_index) for c in chips]
    if any(r.devices is not ramps[0].devices for r in ramps):
        raise ValueError("the chips' windows do not sit on the same devices: not one chip's windows")
    stack = lambda name: np.ascontiguousarray(np.stack([getattr(r, name) for r in ramps]))  # noqa: E731
    u_ramp = stack("u_ramp_after_units")
    return Windows(first.bitlines, first.energy, ramps[0].devices, np.array([c.energy.n_cal for c in chips], np.int64),
                   stack("u_cal_units"), u_ramp, stack("u_ramp_at_cycle_units"), stack("step_min_units"),
                   stack("step_max_units"), np.array([c.noise_half_window() for c in chips], dtype=np.int64),
                   margin_headroom_v(first.bitlines, ramps[0].devices, first.params.n_ramp_steps, u_ramp))


@numba.njit(inline="always", **KERNEL)
def window_models(windows: Windows, w: int):
    """(ramp columns, energy model) of window w."""
    ramp = RampColumns(windows.u_cal_units[w], windows.u_ramp_after_units[w], windows.step_min_units[w],
                       windows.step_max_units[w], windows.u_ramp_at_cycle_units[w], windows.devices)
    e = windows.energy
    return ramp, EnergyModel(e.restore_j_per_v, e.v_precharged_v, e.e_wordline_pulse_j, windows.n_cal[w],
                             e.e_per_count_j, e.e_per_grant_j, e.n_scales)


@numba.njit(**KERNEL)
def convert_rows(start_item, stop_item, windows, window_of, noise_key_of, noise_batch_of,
                 pulse, n_scales, q, levels, n_rows_used, n_keys_used, enable, has_mask, leak_model, k, conventional,
                 with_energy, n_steps, t_clk_units, sigma_noise_v, key0, s, out):
    """The (batch element, row) items start … stop − 1 (row-major) that are used, in groups of
    consecutive rows of one key set (at most :data:`ROWS_PER_GROUP`): the key set is written
    into the array (its code tables built for the rows this block converts), the group's MAC
    phase runs, then its rows convert (:func:`convert_group`) under its element's window
    (``window_of``) with its noise coordinates. ``s``: the block's :class:`Scratch`; ``out``: the
    call's :class:`Outputs`, pre-filled for the items not converted."""
    n_rows = q.shape[1]
    n_max = levels.shape[2]
    q_max = pulse.shape[0] - 1
    current = -1
    item = start_item
    while item < stop_item:
        b = item // n_rows
        r0 = item % n_rows
        # the group: rows r0 … r1 − 1 of key set b
        r1 = min(n_rows, r0 + stop_item - item)
        r_used = min(r1, n_rows_used[b]) if n_keys_used[b] > 0 else r0
        if r_used > r0:
            r_used = min(r_used, r0 + ROWS_PER_GROUP)
            r1 = r_used
            n = n_keys_used[b]
            n_wide = min((n + LANES - 1) // LANES * LANES, n_max)    # the MAC's columns (LANES)
            w = window_of[b]
            ramp, em = window_models(windows, w)
            if b != current:        # a new key set: write it into the array
                current = b
                rows_here = min(n_rows_used[b], r0 + stop_item - item) - r0   # the rows this block converts
                code_lines(q[b, r0:r0 + rows_here], q_max, s.line_of)
                build_code_tables(ramp.devices, pulse, levels[b], n_wide, n_scales, q_max, s.line_of, s.table)
                column_leak(leak_model, levels[b], n, s.leak)
            # MAC phase: the group's pulses on the key set's cells
            group = s.units[: (r_used - r0) * 2 * n_wide].reshape((r_used - r0, 2 * n_wide))
            group[:] = 0.0
            add_rows_units_from_table(s.table, s.line_of, q_max, q[b, r0:r_used], n_wide, s.zero_line, group)
            convert_group(b, r0, r_used, windows.bitlines, ramp, em, q, n_keys_used, enable, has_mask, s.leak[:n],
                          windows.headroom_v[:n], k, conventional, with_energy, n_steps, t_clk_units,
                          windows.half_window[w], sigma_noise_v, noise_key_of[b], noise_batch_of[b], key0, group, n_wide,
                          s, out)
        item += r1 - r0


def convert(windows: Windows, window_of, noise_key_of, noise_batch_of, pulse, q, levels, n_rows_used, n_keys_used,
            enable, leak_model, *, k, conventional, n_steps, t_clk_units, sigma_noise_v, key0, n_scales,
            with_energy=True):
    """One array's conversions (``q`` (B, R, d) int8, ``levels`` (B, d, n) int8, ``enable``
    (B, R, n) or None, ``leak_model`` the array's :class:`~.bitline.LeakModel`; element b under window ``window_of[b]`` of ``windows``, its noise at
    (``noise_key_of[b]``, ``noise_batch_of[b]``); see :func:`convert_rows`). Every window's ramp
    must sit on the same devices (one chip). Returns (firing (B, R, n) int64, granted index and
    cycle (B, R, k) int64, stop (B, R) int64, energy (B, R): NaN without ``with_energy``, which skips the
    energy pass)."""
    # the comparators take Z_MAX·σ as a distance below the threshold, and the noise gate squares σ and
    # the margins (noise.box_muller_lifts): σ² must stay a normal float
    if not (sigma_noise_v == 0.0 or SIGMA_NOISE_MIN_V <= sigma_noise_v <= SIGMA_NOISE_MAX_V):
        raise ValueError(f"the comparator noise σ must be 0 or a number in {SIGMA_NOISE_MIN_V:g} … "
                         f"{SIGMA_NOISE_MAX_V:g} V, got {sigma_noise_v!r}")
    check_pulse_scales(n_scales)
    if pulse.shape[1] != TERMS_PER_SCALE * n_scales:
        raise ValueError(f"the pulse table has {pulse.shape[1]} terms per width, not {TERMS_PER_SCALE} per scale "
                         f"× {n_scales} scales (mac.pulse_terms)")
    # writable and C-ordered (a copy only where they are not): a read-only array (a broadcast, a
    # read-only buffer) would compile the kernels a second time, for that type
    q = np.require(q, np.int8, ["C", "W"])
    levels = np.require(levels, np.int8, ["C", "W"])
    n_batch, n_rows, _ = q.shape
    n = levels.shape[2]
    n_wide = min(-(-n // LANES) * LANES, windows.devices.m_stack.shape[2])
    if n_wide > n:      # zero-level columns up to a multiple of LANES (convert_rows' MAC runs over them)
        levels = np.concatenate([levels, np.zeros((*levels.shape[:2], n_wide - n), dtype=levels.dtype)], axis=2)
    firing = np.full((n_batch, n_rows, n), n_steps + 1, dtype=np.int64)
    slots = 1 if conventional else k
    index = np.full((n_batch, n_rows, slots), -1, dtype=np.int64)
    cycle = np.full(index.shape, n_steps + 1, dtype=np.int64)
    stop = np.full((n_batch, n_rows), n_steps if conventional else 0, dtype=np.int64)
    energy = np.zeros((n_batch, n_rows)) if with_energy else np.full((n_batch, n_rows), np.nan)
    has_mask = enable is not None
    mask = enable if has_mask else np.ones((1, 1, n), dtype=np.bool_)
    out = Outputs(firing, index, cycle, stop, energy)
    window_of = np.ascontiguousarray(window_of, dtype=np.int64)
    noise_key_of = np.ascontiguousarray(noise_key_of, dtype=np.uint64)
    noise_batch_of = np.ascontiguousarray(noise_batch_of, dtype=np.int64)

    def block(start_item: int, stop_item: int) -> None:
        convert_rows(start_item, stop_item, windows, window_of, noise_key_of, noise_batch_of, pulse, n_scales, q,
                     levels, n_rows_used, n_keys_used, mask, has_mask, leak_model, k, conventional, with_energy,
                     n_steps, t_clk_units, sigma_noise_v, key0,
                     scratch_of_block(q.shape[2], pulse.shape[0] - 1, levels.shape[2], n_steps), out)
    # one key set: its rows cost alike, and each block writes the set's cells again
    parallel_for(block, n_batch * n_rows, blocks_per_thread=1 if n_batch == 1 else 4)
    return firing, index, cycle, stop, energy
