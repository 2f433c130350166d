"""Energy and latency of one query row's conversion on one array.

* bitline restore: V_pre·C_eff·Σ_columns (2·V0 − V_L − V_R) at the stop (C_eff fitted to the
  SPICE restore energies, :func:`params_from_calibration`);
* wordline pulses: (pulsed elements·scales + n_cal + stop cycles) per column in use;
* sense-amplifier decisions: each column is clocked until it fires or the ramp stops (a column
  disabled at the arbiter is not clocked), at e = a + b·CM + κ·ln(V_ref/|V_R − V_L|) per decision
  (:mod:`.bitline`), CM the mean of the bitlines at cycle 1 and at the stop (they fall ~linearly; a
  column that fires early is clocked few times, so the difference to its own last decision weighs
  little), and the overdrive term summed over decisions whose V_R − V_L rises evenly from cycle 1
  to the column's last decision (:func:`.bitline.overdrive_log_sum`: from a table of the term's
  integral, no logarithm per column; tested against the sum over its decisions);
* digital: the ramp counter per cycle, and per grant the arbiter tree, k-counter and encoder
  (the slow corner of the artefact's digital characterisation).

Latency: PWM phase + calibration clock + the cycles used × t_clk + the arbiter/encoder/counter
delay at the slow corner.
"""
from __future__ import annotations

from typing import NamedTuple

import numba

from topkima.behavioral.macro.adc import bitlines_at, units_at_sense
from topkima.behavioral.macro.bitline import _log_integral, ln_in_place, overdrive_log_sum, sensed_bitlines
from topkima.behavioral.macro.runtime import KERNEL, NO_OVERLAP_KERNEL
from topkima.behavioral.params import MacroParams


class EnergyModel(NamedTuple):
    restore_j_per_v: float      #: V_pre·C_eff
    v_precharged_v: float       #: V0
    e_wordline_pulse_j: float
    n_cal: int
    e_per_count_j: float        #: ramp counter, per cycle
    e_per_grant_j: float        #: arbiter tree + k-counter + encoder, per grant
    n_scales: int


def energy_model(p: MacroParams, n_scales: int) -> EnergyModel:
    dig = p.digital["corners"][p.digital.get("slow_corner", "ss")]
    return EnergyModel(p.v_precharge_v * p.c_bitline_eff_f, float(p.curve_v[0]), p.e_wordline_pulse_j, int(p.n_cal),
                       float(dig["e_per_count_j"]),
                       float(dig["e_per_grant_tree_j"] + dig["e_per_grant_count_j"] + dig["e_per_encode_j"]),
                       int(n_scales))


def latency_s(p: MacroParams, stop_cycles):
    """Latency of conversions that stopped at ``stop_cycles``."""
    return p.t_pwm_s + p.t_clk_ima_s * (1 + stop_cycles) + float(p.digital["t_arb_total_s"])


@numba.njit(inline="always", **KERNEL)
def sensed_at_cycle(bl, ramp, j: int, units_l, units_r, leak, v_l, v_r) -> None:
    """(V_L, V_R) of every column c < ``v_l.size`` at the sense instant of cycle j, into ``v_l``,
    ``v_r``: two passes over the columns with no branch, so that they run as vector instructions
    (the ramp's units at j read from its cycle-major copy, a contiguous row). The first puts the
    bitlines' units there (leakage included) into ``v_l``, ``v_r``; the second turns them into volts.
    Each pass reads one table per bitline, so the table reads of many columns overlap (in one pass,
    the curve's read would wait on the leakage's)."""
    u_ramp = ramp.u_ramp_at_cycle_units[j]
    for c in range(v_l.size):
        v_l[c], v_r[c] = units_at_sense(bl, j, float(units_l[c]), float(units_r[c]), leak[c], u_ramp[c],
                                        ramp.u_cal_units[c])
    for c in range(v_l.size):
        v_l[c], v_r[c] = sensed_bitlines(bl, j, v_l[c], v_r[c])


@numba.njit(inline="always", **KERNEL)
def sweep_to_stop(bl, n_minus_1: int, d_1: float, d_last: float) -> float:
    """:func:`.bitline.overdrive_log_sum` of a column clocked from cycle 1 to the stop n_minus_1 + 1 > 1
    (most columns: those that did not fire before it), V_R − V_L = ``d_1`` at cycle 1 and ``d_last`` at
    the stop: the arithmetic of that function's sweep (its other case, one decision or V_R − V_L not
    moving, is left to the caller), without a branch."""
    rise = d_last - d_1
    half_step = 0.5 * rise / n_minus_1
    return n_minus_1 * (_log_integral(bl, d_last + half_step) - _log_integral(bl, d_1 - half_step)) / rise


@numba.njit(inline="always", **KERNEL)
def column_decisions_j(bl, firing, enabled, stop: int, j_end: int, swept: bool, v_l_end, v_r_end, v_l_1, v_r_1,
                       c: int, od_c: float):
    """(V_L + V_R at the stop, the decision energy of column c (that of a column clocked to the stop
    complete: ``od_c`` its :func:`sweep_to_stop`), whether it is clocked to the stop with V_R − V_L not
    moving (its overdrive sum is then left to the caller))."""
    end = v_l_end[c] + v_r_end[c]
    clocked = min(int(firing[c]), stop) if enabled[c] else 0
    cm = v_l_1[c] + v_r_1[c]
    cm += end
    cm *= 0.25
    e = clocked * (bl.e_decision_at_0_j + bl.e_decision_per_v * cm)
    moves = abs((v_r_end[c] - v_l_end[c]) - (v_r_1[c] - v_l_1[c])) >= 1e-12
    to_stop = swept and clocked == j_end and moves
    return end, e + (bl.e_decision_per_ln_od_j * od_c if to_stop else 0.0), clocked == j_end and not moves


@numba.njit(inline="always", **KERNEL)
def sum_in_lanes(x) -> float:
    """Σ x in a fixed order that runs as vector additions: eight partial sums over x[c], c mod 8, then
    those eight pairwise (the same order on every machine and thread)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = x.size - x.size % 8
    for c in range(0, n8, 8):
        s0 += x[c]
        s1 += x[c + 1]
        s2 += x[c + 2]
        s3 += x[c + 3]
        s4 += x[c + 4]
        s5 += x[c + 5]
        s6 += x[c + 6]
        s7 += x[c + 7]
    for c in range(n8, x.size):
        s0 += x[c]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@numba.njit(**NO_OVERLAP_KERNEL)
def row_energy_j(bl, ramp, em: EnergyModel, units_l, units_r, leak, firing, enabled, stop: int,
                 n_pulsed: int, n_grants: int, scratch) -> float:
    """Energy of one row's conversion on one array (module docstring): ``units_l``, ``units_r``
    (n,) its columns' MAC units on RBL_L and RBL_R, ``leak`` (n,), ``firing`` (n,) cycles,
    ``enabled`` (n,) columns enabled at the arbiter; ``scratch`` (7, ≥ n) float64, an array of its own.

    The bitlines of every column at the stop and at cycle 1 come first, in two passes over the
    columns (:func:`sensed_at_cycle`), then each column's decision energy in one pass, that of a column
    clocked to the stop complete with its overdrive sum (:func:`sweep_to_stop`,
    :func:`column_decisions_j`); these passes have no branch and run as vector instructions (their
    arrays never overlap: compiled with ``noalias``). The columns clocked to a cycle before the stop
    (fired) then get their overdrive sums one by one (found by their firing cycle alone, unless the
    decision pass counted a column clocked to the stop whose V_R − V_L does not move: then every
    column is looked at); where the ramp stopped in cycle 1 (saturated rows), every clocked column's
    one term comes from a logarithm pass without branches (:func:`.bitline.ln_in_place`).
    The sums over the columns run in eight lanes (:func:`sum_in_lanes`)."""
    n = firing.size
    if scratch.shape[0] < 7 or scratch.shape[1] < n:    # no bounds checks in the kernels: a short scratch would be overrun
        raise ValueError("row_energy_j: scratch must be (7, ≥ n)")
    j_end = max(stop, 1)
    v_l_end, v_r_end, v_l_1, v_r_1, od = scratch[0, :n], scratch[1, :n], scratch[2, :n], scratch[3, :n], scratch[4, :n]
    v_sum_end, e_column = scratch[5, :n], scratch[6, :n]
    sensed_at_cycle(bl, ramp, j_end, units_l, units_r, leak, v_l_end, v_r_end)
    if j_end != 1:
        sensed_at_cycle(bl, ramp, 1, units_l, units_r, leak, v_l_1, v_r_1)
    else:                               # the ramp stopped in cycle 1 (saturated rows): the same instant
        for c in range(n):
            v_l_1[c] = v_l_end[c]
            v_r_1[c] = v_r_end[c]
    with_overdrive = bl.e_decision_per_ln_od_j != 0.0
    swept = with_overdrive and j_end > 1       # a column clocked to the stop sums a sweep
    n_still = 0                         # columns clocked to the stop whose V_R − V_L does not move
    if swept:                           # (two loops: each runs as vector instructions)
        for c in range(n):
            od_c = sweep_to_stop(bl, j_end - 1, v_r_1[c] - v_l_1[c], v_r_end[c] - v_l_end[c])
            v_sum_end[c], e_column[c], still = column_decisions_j(bl, firing, enabled, stop, j_end, True, v_l_end,
                                                                  v_r_end, v_l_1, v_r_1, c, od_c)
            n_still += 1 if still else 0
    else:
        for c in range(n):
            v_sum_end[c], e_column[c], still = column_decisions_j(bl, firing, enabled, stop, j_end, False, v_l_end,
                                                                  v_r_end, v_l_1, v_r_1, c, 0.0)
            n_still += 1 if still else 0
    if with_overdrive and j_end == 1:   # every clocked column decided once (saturated rows): its own term
        for c in range(n):
            a = abs(v_r_1[c] - v_l_1[c])
            a = a if a > bl.od_min_v else bl.od_min_v
            a = a if a < bl.od_max_v else bl.od_max_v
            od[c] = bl.od_ref_v / a
        ln_in_place(od, v_l_1)          # (v_l_1 is free: the decision pass has read it)
        for c in range(n):
            clocked = min(int(firing[c]), stop) if enabled[c] else 0
            e_column[c] += bl.e_decision_per_ln_od_j * od[c] if clocked > 0 else 0.0
    elif with_overdrive:                # the other clocked columns' overdrive sums: those that fired
        for c in range(n):              # before the stop, and any counted in n_still
            if firing[c] >= j_end and n_still == 0:
                continue
            clocked = min(int(firing[c]), stop) if enabled[c] else 0
            d_1 = v_r_1[c] - v_l_1[c]
            d_last = v_r_end[c] - v_l_end[c]    # the column's last decision: at the stop …
            if clocked == 0 or (swept and clocked == j_end and abs(d_last - d_1) >= 1e-12):
                continue
            if clocked == 1:                    # … or at the cycle it fired in, before the stop
                d_last = d_1
            elif clocked < j_end:
                v_lc, v_rc = bitlines_at(bl, ramp, c, clocked, float(units_l[c]), float(units_r[c]), leak[c])
                d_last = v_rc - v_lc
            e_column[c] += bl.e_decision_per_ln_od_j * overdrive_log_sum(bl, d_1, d_last, clocked)
    e_restore = em.restore_j_per_v * (2 * n * em.v_precharged_v - sum_in_lanes(v_sum_end))
    n_pulses = (n_pulsed * em.n_scales + em.n_cal + stop) * n
    e_digital = stop * em.e_per_count_j + min(n_grants, n) * em.e_per_grant_j
    return e_restore + n_pulses * em.e_wordline_pulse_j + sum_in_lanes(e_column) + e_digital
