"""The in-memory ramp ADC of a column and its comparator.

* **Window.** The calibration phase adds Σ m_cal·(slope·t_cal + offset) units to RBL_R (n_cal
  replica cells); ramp step j adds m_ramp_j·(slope·t_ramp + offset) units to RBL_L.
* **Decision.** The column's comparator fires at the first ramp cycle j (1…n, n ramp steps:
  32 in the paper's column, :mod:`.ramp_limits`) at which
  g(j) = V_R(j) − V_L(j) − V_os(CM) + σ_n·z_j > 0, V_X the sensed bitlines (:mod:`.bitline`),
  V_os the frozen offset of that comparator, piecewise linear in the bitlines' common mode CM
  between the common modes the artefact characterises, z_j a standard normal (:mod:`.noise`).
* **Noise window.** Noise (σ_n ≈ 0.1 LSB) enters the 2h decisions around the noiseless crossing
  j0 (j0−h … j0+h−1, h from :func:`noise_half_window`); decisions further away are more than
  6 σ_n from the threshold and are taken as deterministic. The slow reference in the tests
  applies exactly this rule, cycle by cycle.
* **Crossing search.** j0 is the first cycle with g(j) > 0 (n + 1: never). While RBL_L stays on
  the discharge curve, g rises with j (each ramp step lowers V_L by about one LSB), so the last
  cycle decides "never"; a conversion that fires is found from a
  first guess (the units RBL_L must reach at mid-ramp, through the inverse curve) by stepping
  until g(j0−1) ≤ 0 < g(j0). On the flat end of the curve a ramp step hardly lowers V_L while
  leakage still lowers V_R, so g need not rise: a conversion whose RBL_L falls there by less
  than twice what leakage and drift can do per cycle is scanned cycle by cycle from the first.
* **Screen.** Before any of that, a column whose margin's ceiling (:func:`margin_ceiling_v`: V_R
  at its highest, V_L at its lowest, the offset and the in-situ terms at their worst; two curve
  reads) lies more than Z_MAX·σ_n below the threshold never fires: none of its decisions could
  draw noise, so skipping it changes no result (most of a top-k's columns).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np

from topkima.behavioral.macro.bitline import BitlineModel, leak_units, sensed_bitlines, units_of_v_estimate, v_of_units
from topkima.behavioral.macro.devices import MAX_VCM_BREAKS, ArrayDevices
from topkima.behavioral.macro.noise import Z_MAX, box_muller_lifts, decision_uniforms, noise_lifts_above_zero, row_stream
from topkima.behavioral.macro.packed_table import grid_index
from topkima.behavioral.macro.ramp_limits import RampLimits
from topkima.behavioral.macro.runtime import KERNEL, NO_OVERLAP_KERNEL
from topkima.behavioral.params import MacroParams


@dataclass(frozen=True)
class AdcRange:
    """The ramp ADC's window in MAC units: top = n_cal·t_cal_units, LSB = t_ramp_units.

    Codes cover (top − n·LSB, top] for a ramp of n steps; larger scores saturate at code n − 1
    (fire in cycle 1), smaller ones never fire. ``limits`` (:class:`RampLimits`, default the
    paper's column: 32 steps, n_cal ≤ 32 calibration cells, a calibration pulse ≤ 6 units and a
    ramp pulse ≤ 4 units within the 4 ns clock, circuits/column.py) bound the three settings;
    they are not part of the window's identity (equality, hash), and a macro checks a window
    against its own limits when it takes it.
    """

    n_cal: int = 32
    t_cal_units: int = 4
    t_ramp_units: int = 4
    limits: RampLimits = field(default=RampLimits(), compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.limits, RampLimits):
            raise ValueError(f"AdcRange.limits must be a RampLimits, got {self.limits!r}")
        self.limits.check(self.n_cal, self.t_cal_units, self.t_ramp_units)

    @property
    def top_units(self) -> int:
        return self.n_cal * self.t_cal_units

    @property
    def lsb_units(self) -> int:
        return self.t_ramp_units


def choose_adc_range(scores_units: np.ndarray, k: int, n_steps: int = 32, top_quantile: float = 0.75,
                     bottom_quantile: float = 0.1, limits: RampLimits | None = None) -> tuple[AdcRange, float]:
    """An ADC window from sample scores (MAC units, rows × keys) and the query scale to apply.

    The window top sits at the ``top_quantile`` of the rows' largest scores (rows above it
    saturate: their best keys fire together in cycle 1, still selected); its bottom at the
    ``bottom_quantile`` of the rows' k-th largest scores, so that in most rows k keys fire.
    The LSB is the smallest step (≤ the longest ramp pulse, 4 units: it fits the 4 ns clock) for
    which the ramp's steps span the two. When even the longest steps do not span them, or the
    top exceeds what the calibration cells can set (32 × 6 units), the second value is the factor
    (< 1) by which the query codes are scaled (folded into W_Q, as the scale-free trick does with
    1/√d_k); otherwise it is 1. ``limits``: the column's (default: the paper's column with
    ``n_steps`` ramp steps). Rows given as −inf/NaN-free arrays; at least k keys per row.
    """
    s = np.asarray(scores_units, dtype=float)
    if s.ndim != 2 or s.shape[1] < k or k < 1:
        raise ValueError("scores_units must be (rows, keys) with at least k keys per row")
    if not 0 <= bottom_quantile <= top_quantile <= 1:
        raise ValueError("need 0 ≤ bottom_quantile ≤ top_quantile ≤ 1")
    ordered = -np.sort(-s, axis=1)
    top = float(np.quantile(ordered[:, 0], top_quantile))
    bottom = float(np.quantile(ordered[:, k - 1], bottom_quantile))
    return adc_range_spanning(top, bottom, n_steps, limits=limits)


def adc_range_spanning(top_units: float, bottom_units: float, n_steps: int = 32,
                       limits: RampLimits | None = None) -> tuple[AdcRange, float]:
    """The ADC window (and query scale) of :func:`choose_adc_range` for a window top and bottom
    already taken from the scores (MAC units). ``limits`` None: the paper's column, ``n_steps`` steps."""
    lim = _paper_column(n_steps) if limits is None else limits
    n = lim.n_steps
    top = max(float(top_units), 1.0)
    span = max(top - float(bottom_units), 1.0)
    scale = min(1.0, lim.max_top_units / top, lim.max_span_units / span)
    top, span = top * scale, span * scale
    lsb = min(max(math.ceil(span / n - 1e-9), 1), lim.max_t_ramp_units)
    # the calibration setting n_cal × t_cal closest to the top (ties: fewest cells, then shortest pulse)
    cells, pulses, products = _calibration_settings(lim)
    n_best, t_best = divmod(int(np.argmin(np.abs(products - top))), pulses.size)
    return AdcRange(int(cells[n_best]), int(pulses[t_best]), lsb, limits=lim), scale


@functools.lru_cache(maxsize=64, typed=True)      # typed: 32.0 is refused as before
def _paper_column(n_steps: int) -> RampLimits:
    return RampLimits(n_steps=n_steps)


@functools.lru_cache(maxsize=64)
def _calibration_settings(lim: RampLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calibration cell counts and pulses a column allows, and their products (MAC units) in
    (cells, pulse) order, flattened."""
    cells, pulses = np.arange(1, lim.n_cal_cells + 1), np.arange(1, lim.max_t_cal_units + 1)
    products = (cells[:, None] * pulses[None, :]).reshape(-1)
    for x in (cells, pulses, products):
        x.setflags(write=False)         # shared by every call
    return cells, pulses, products


class RampColumns(NamedTuple):
    """What the kernels read of one array's ADC under one window (per column)."""

    u_cal_units: np.ndarray        #: (n_cols,) units the calibration phase puts on RBL_R
    u_ramp_after_units: np.ndarray  #: (n_cols, n_steps + 1) ramp units on RBL_L after cycle j
    step_min_units: np.ndarray     #: (n_cols,) the column's smallest ramp step …
    step_max_units: np.ndarray     #: (n_cols,) … and its largest
    u_ramp_at_cycle_units: np.ndarray  #: (n_steps + 1, n_cols) u_ramp_after_units cycle by cycle (one cycle's row is contiguous)
    devices: ArrayDevices


def ramp_columns(p: MacroParams, devices: ArrayDevices) -> RampColumns:
    """The window-dependent column quantities of an array (``p`` carries the window)."""
    unit_cal = p.pulse_slope * p.t_cal_units + p.pulse_offset_units
    unit_ramp = p.pulse_slope * p.t_ramp_units + p.pulse_offset_units
    n_cols = devices.m_cal.shape[0]
    u_cal = devices.m_cal[:, : p.n_cal].sum(axis=1) * unit_cal if p.t_cal_units > 0 else np.zeros(n_cols)
    u_ramp = np.concatenate([np.zeros((n_cols, 1)), np.cumsum(devices.m_ramp * unit_ramp, axis=1)], axis=1)
    steps = np.diff(u_ramp, axis=1)
    return RampColumns(np.ascontiguousarray(u_cal), np.ascontiguousarray(u_ramp),
                       np.ascontiguousarray(steps.min(axis=1)), np.ascontiguousarray(steps.max(axis=1)),
                       np.ascontiguousarray(u_ramp.T), devices)


def noise_half_window(p: MacroParams) -> int:
    """Decisions j0−h … j0+h−1 around the noiseless crossing j0 get noise (h ≥ 1): every other
    decision is more than 6 σ_n from the threshold, one ramp step (≥ 0.9 LSB) per cycle away."""
    return max(1, int(np.ceil(6 * p.sa_noise_sigma_v / (0.9 * p.lsb_v))))


@numba.njit(inline="always", **KERNEL)
def comparator_offset_v(devices: ArrayDevices, col: int, v_cm: float) -> float:
    """V_os of column ``col``'s comparator at common mode ``v_cm`` (end segments extrapolate): the
    segment is the number of its (increasing) boundaries below ``v_cm``, counted over a constant
    MAX_VCM_BREAKS (+inf beyond the model's), so that the count unrolls into compares without a
    loop or branch and the column loops that evaluate g run as vector instructions."""
    seg = 0
    for b in range(MAX_VCM_BREAKS):
        seg += devices.vcm_breaks_v[b] < v_cm
    return devices.v_os_at_0_v[col, seg] + devices.v_os_per_v[col, seg] * v_cm


@numba.njit(inline="always", **KERNEL)
def bitlines_at(bl: BitlineModel, ramp: RampColumns, col: int, j: int, u_l0: float, u_r0: float, leak: float):
    """(V_L, V_R) of a column at the sense instant of cycle j: MAC units + leakage (at each bitline's
    level, :func:`.bitline.leak_units`) + ramp / calibration."""
    u_l, u_r = units_at_sense(bl, j, u_l0, u_r0, leak, ramp.u_ramp_after_units[col, j], ramp.u_cal_units[col])
    return sensed_bitlines(bl, j, u_l, u_r)


@numba.njit(inline="always", **KERNEL)
def units_at_sense(bl: BitlineModel, j: int, u_l0: float, u_r0: float, leak: float, u_ramp: float, u_cal: float):
    """(U_L, U_R) the bitlines carry at cycle j's sense instant: MAC units + leakage (at each bitline's
    level, :func:`.bitline.leak_units`) + ramp (``u_ramp``) / calibration (``u_cal``) units."""
    cycle = np.int64(j)     # (one type for every caller's cycle: leak_units, out of line, compiles once)
    u_l = u_l0 + leak_units(bl, cycle, leak, u_l0, u_ramp, bl.ramp_age_frac[j])
    u_l += u_ramp
    u_r = u_r0 + leak_units(bl, cycle, leak, u_r0, u_cal, bl.cal_age_frac[j])
    u_r += u_cal
    return u_l, u_r


@numba.njit(inline="always", **KERNEL)
def decision_margin_v(bl: BitlineModel, ramp: RampColumns, col: int, j: int, u_l0: float, u_r0: float,
                      leak: float) -> float:
    """g(j) = V_R − V_L − V_os(CM) at cycle j's sense instant, without noise (fires when > 0)."""
    v_l, v_r = bitlines_at(bl, ramp, col, j, u_l0, u_r0, leak)
    cm = v_r + v_l
    cm *= 0.5
    g = v_r - v_l
    g -= comparator_offset_v(ramp.devices, col, cm)
    return g


@numba.njit(inline="always", **KERNEL)
def _first_guess(bl, ramp, col, u_l0, u_r0, leak, n_steps, t_clk_units):
    """The noiseless crossing estimated at mid-ramp (only sets where the search starts)."""
    mid = n_steps // 2
    per_cycle = ramp.u_ramp_after_units[col, n_steps] / n_steps + leak * t_clk_units
    t_mid = bl.t_sense_units[mid]
    target = units_of_v_estimate(bl, v_of_units(bl, u_r0 + leak * t_mid + ramp.u_cal_units[col])
                                 - ramp.devices.v_os_mid_v[col])
    base = u_l0 + leak * t_mid + ramp.u_ramp_after_units[col, mid] - mid * per_cycle
    x = math.ceil((target - base) / per_cycle)
    if not x >= 1.0:      # also NaN
        return 1
    if x > n_steps + 1:
        return n_steps + 1
    return int(x)


@numba.njit(**NO_OVERLAP_KERNEL)
def first_guesses(bl, ramp, units, n_wide, leak, near_row, near_col, n_steps, t_clk_units, j_first) -> None:
    """For each listed column (``near_row[i]``, ``near_col[i]``, units as
    :func:`firing_cycles_where_g_rises` reads them), where the crossing search starts: the first guess
    clamped to 2 … n_steps, into ``j_first[i]``. One pass without branches (vector gathers)."""
    for i in range(near_row.size):
        c = near_col[i]
        j_first[i] = min(max(_first_guess(bl, ramp, c, float(units[near_row[i], c]), float(units[near_row[i], n_wide + c]),
                                          leak[c], n_steps, t_clk_units), 2), n_steps)


@numba.njit(inline="always", **KERNEL)
def _crossing_from_bracket(bl, ramp, col, u_l0, u_r0, leak, n_steps, g_last, j0, g_lo, g_hi):
    """(j0, g(j0), g(j0 − 1)) of a conversion that fires (g(n_steps) = ``g_last`` > 0) where g rises,
    from g(j0 − 1) = ``g_lo`` and g(j0) = ``g_hi`` at the first guess (:func:`first_guesses`): one
    cycle at a time to g(j0 − 1) ≤ 0 < g(j0), or to g(1) > 0 (saturated: j0 = 1, both values g(1)). g
    rises, so the bracket found is the first crossing, whatever the guess. g is evaluated out of line
    (:func:`_margin_in_window`: the guess is within a cycle of the crossing for most conversions, and
    the kernel compiles 1 s faster than with g inlined here)."""
    while True:
        if j0 < n_steps and g_hi <= 0.0:  # not yet (g(n_steps) > 0 settles j0 = n_steps): one cycle up
            j0 += 1
            g_lo = g_hi
            j = j0
        elif g_lo > 0.0:                # already fired before: one cycle down
            if j0 == 2:
                return 1, g_lo, g_lo    # saturated: g(1) > 0
            j0 -= 1
            g_hi = g_lo
            j = j0 - 1
        else:
            return j0, g_hi, g_lo
        g = g_last if j == n_steps else _margin_in_window(bl, ramp, col, j, u_l0, u_r0, leak)
        if j == j0:
            g_hi = g
        else:
            g_lo = g


@numba.njit(**KERNEL)
def _margin_in_window(bl, ramp, col, j, u_l0, u_r0, leak):
    """g(j) out of line, for the rare paths (a first guess off the crossing, a noise window wider than
    two decisions, the scan's last cycles)."""
    return decision_margin_v(bl, ramp, col, j, u_l0, u_r0, leak)


@numba.njit(**KERNEL)
def _rise_per_cycle_max_v(bl, ramp, col, j, u_l0, u_r0, leak, t_clk_units):
    """An upper bound of g(j' + 1) − g(j') for every cycle j' ≥ j ≥ 2, with a factor 1.5 of margin:
    V_L and V_R fall by at most their curve's steepest fall from where they are (the curve is
    not assumed convex), the in-situ correction mixes them and drifts, and the comparator offset
    follows the common mode."""
    ppu = bl.points_per_unit
    last = float(bl.last_index)
    # where the bitlines are at least (leakage left out: the fall from there on bounds the fall from
    # where they really are), and the leakage per PWM unit at the highest level
    x_l = u_l0 + ramp.u_ramp_after_units[col, j]
    x_r = u_r0 + ramp.u_cal_units[col]
    leak_max = leak * bl.leak_rel_max
    fall_l = bl.fall_max_from_v[grid_index(x_l * ppu, last)] * ppu * (ramp.step_max_units[col]
                                                                             + leak_max * t_clk_units)  # ramp and leakage
    fall_r = bl.fall_max_from_v[grid_index(x_r * ppu, last)] * ppu * leak_max * t_clk_units
    b_max = ramp.devices.v_os_slope_max_per_v[col]
    k_l = abs(bl.mix_r - bl.keep_l) + 0.5 * b_max * (abs(bl.keep_l) + abs(bl.mix_r))
    k_r = abs(bl.keep_r + bl.mix_l) + 0.5 * b_max * (abs(bl.mix_l) + abs(bl.keep_r))
    drift = bl.drift_rl_v_per_cycle + 0.5 * b_max * (bl.drift_l_v_per_cycle + bl.drift_r_v_per_cycle)
    return 1.5 * (k_l * fall_l + k_r * fall_r + drift)


@numba.njit(inline="always", **KERNEL)
def _first_crossing_by_scan(bl, ramp, col, u_l0, u_r0, leak, n_steps, t_clk_units, first_in_window, sure_v, g_1):
    """(j0, g(j0), g(j0 − 1)) by the definition, the first cycle with g > 0, for a conversion
    where g need not rise: cycles 1 (g(1) = ``g_1``, already evaluated) and 2, then onwards, skipping
    the cycles that a bound on how fast g can rise (:func:`_rise_per_cycle_max_v`) shows cannot reach 0.

    When it never fires, the second value is an upper bound of g over the cycles from
    ``first_in_window`` on (the noise window's): the rise bound's, or +inf; when that bound is
    −``sure_v`` or lower (none of the window's decisions can fire), g(j0 − 1) is not evaluated."""
    j = 1
    j_evaluated = 0
    g_lo = 0.0
    g_bound = np.inf            # an upper bound of g from first_in_window on
    while j <= n_steps:         # g out of line (_margin_in_window): the kernels compile 0.8 s faster
        g = g_1 if j == 1 else _margin_in_window(bl, ramp, col, j, u_l0, u_r0, leak)
        if g > 0.0:
            if j == 1:
                return 1, g, g
            if j_evaluated != j - 1:
                g_lo = _margin_in_window(bl, ramp, col, j - 1, u_l0, u_r0, leak)
            return j, g, g_lo
        g_lo = g
        j_evaluated = j
        if j == 1:
            j = 2               # the rise bound holds from cycle 2
            continue
        rise = max(_rise_per_cycle_max_v(bl, ramp, col, j, u_l0, u_r0, leak, t_clk_units), 0.0)
        if j <= first_in_window:
            g_bound = g + rise * (n_steps - j)
        if rise == 0.0 or -g >= rise * (n_steps - j):
            break                           # no later cycle can reach the threshold
        j += 1 + int(-g / rise)             # the earliest cycle that could
    if g_bound <= -sure_v:
        return n_steps + 1, g_bound, g_bound
    if j_evaluated != n_steps:
        g_lo = _margin_in_window(bl, ramp, col, n_steps, u_l0, u_r0, leak)
    return n_steps + 1, np.inf, g_lo


@numba.njit(inline="always", **KERNEL)
def g_rises(bl: BitlineModel, ramp: RampColumns, col: int, u_l0: float, u_r0: float, leak: float, n_steps: int,
            t_clk_units: float) -> bool:
    """Whether g surely rises with the cycle: each ramp step lowers V_L by more than twice what
    leakage and the sense amplifier's drift can lower V_R − V_L in a cycle, the comparator offset
    following the common mode counted against it (|b| ≤ b_max: it moves with half the bitlines' fall
    and with the in-situ offsets' common-mode step). On the flat end of the discharge curve it may
    not (V_L stops falling): then the first crossing is found by a scan."""
    ppu = bl.points_per_unit
    last = float(bl.last_index)
    # RBL_L at most this far down the curve (leakage at its highest rate), RBL_R at least this far
    u_l_last = u_l0 + leak * bl.leak_rel_max * bl.t_sense_units[n_steps] + ramp.u_ramp_after_units[col, n_steps]
    v_l_fall_min = -bl.curve_dv[grid_index(u_l_last * ppu, last)] * ppu * ramp.step_min_units[col]
    u_r_first = u_r0 + ramp.u_cal_units[col]
    v_r_fall_max = bl.fall_max_from_v[grid_index(u_r_first * ppu, last)] * ppu * leak * bl.leak_rel_max * t_clk_units
    b_max = ramp.devices.v_os_slope_max_per_v[col]
    return v_l_fall_min * (1.0 - 0.5 * b_max) > 2.0 * (v_r_fall_max * (1.0 + 0.5 * b_max) + bl.drift_v_per_cycle
                                                      + b_max * bl.drift_cm_v_per_cycle)


def margin_headroom_v(bl: BitlineModel, devices: ArrayDevices, n_steps: int, u_ramp_after_units) -> np.ndarray:
    """Per column c, H_c with g(j) ≤ b_R·V_R,max − a_L·V_L,min + H_c at every cycle j = 1 … n_steps
    (:func:`margin_ceiling_v`; numpy, once per chip): g = b_R·V_R − a_L·V_L + Δoff(j) − V_os(CM)
    after the in-situ correction (a_L = keep_l − mix_r, b_R = keep_r + mix_l), so H_c is the largest
    Δoff(j) = offset_r(j) − offset_l(j) plus the largest −V_os of column c over every common mode the
    corrected bitlines can reach (the curve's whole range by interval arithmetic; each segment of
    the offset at its ends).

    +inf (no ceiling: every column takes the full path) unless what the ceiling rests on holds: a_L
    and b_R positive, the discharge curve never rising with units, the leakage's relative rate not
    negative, the sense instants not negative and not falling, and the ramp's units
    (``u_ramp_after_units``, (…, n_cols, n_steps + 1), every window's) never falling from one cycle to
    the next. The leakage per unit must not be negative either (the comparators check it per column,
    :func:`topkima.behavioral.macro.convert.fire_comparators`)."""
    n_cols = devices.v_os_at_0_v.shape[0]
    holds = (bl.keep_l - bl.mix_r > 0.0 and bl.keep_r + bl.mix_l > 0.0 and np.all(np.diff(bl.curve_v) <= 0.0)
             and np.all(bl.leak_rel >= 0.0) and np.all(np.diff(u_ramp_after_units, axis=-1) >= 0.0)
             and np.all(bl.t_sense_units[: n_steps + 1] >= 0.0) and np.all(np.diff(bl.t_sense_units[: n_steps + 1]) >= 0.0))
    if not holds:
        return np.full(n_cols, np.inf)
    j = slice(1, n_steps + 1)
    off_l, off_r = bl.offset_l_v[j], bl.offset_r_v[j]
    v = np.array([bl.curve_v.min(), bl.curve_v.max()])
    # the corrected bitlines' range, hence the common mode's
    l_lo = np.min(bl.keep_l * v) + np.min(-bl.mix_l * v) + off_l.min()
    l_hi = np.max(bl.keep_l * v) + np.max(-bl.mix_l * v) + off_l.max()
    r_lo = np.min(bl.mix_r * v) + np.min(bl.keep_r * v) + off_r.min()
    r_hi = np.max(bl.mix_r * v) + np.max(bl.keep_r * v) + off_r.max()
    cm_lo, cm_hi = 0.5 * (l_lo + r_lo), 0.5 * (l_hi + r_hi)
    # segment s holds breaks[s − 1] < CM ≤ breaks[s] (comparator_offset_v): its ends inside the range
    edges = np.concatenate([[-np.inf], devices.vcm_breaks_v, [np.inf]])
    worst = np.full(n_cols, -np.inf)
    for s in range(devices.v_os_at_0_v.shape[1]):
        lo, hi = max(cm_lo, edges[s]), min(cm_hi, edges[s + 1])
        if lo > hi:
            continue
        a, b = devices.v_os_at_0_v[:, s], devices.v_os_per_v[:, s]
        worst = np.maximum(worst, np.maximum(-(a + b * lo), -(a + b * hi)))
    return np.ascontiguousarray(np.max(off_r - off_l) + worst)


@numba.njit(inline="always", **KERNEL)
def margin_ceiling_v(bl: BitlineModel, ramp: RampColumns, col: int, u_l0: float, u_r0: float, leak: float,
                     n_steps: int, headroom_v: float) -> float:
    """An upper bound of g(j) over every cycle j = 1 … n_steps, from two points of the curve: V_R at
    its highest (calibration units, no leakage) and V_L at its lowest (the whole ramp and the
    leakage at its highest relative rate), ``headroom_v`` the column's :func:`margin_headroom_v`
    (f falls with units, and leakage and the ramp only add units). A column whose ceiling is more
    than Z_MAX·σ below the threshold never fires, noise or not: none of its decisions is drawn, so
    screening it out changes no result."""
    u_l_max = u_l0 + leak * bl.leak_rel_max * bl.t_sense_units[n_steps] + ramp.u_ramp_after_units[col, n_steps]
    return ceiling_of_extremes_v(bl, u_l_max, u_r0 + ramp.u_cal_units[col], headroom_v)


@numba.njit(inline="always", **KERNEL)
def ceiling_of_extremes_v(bl: BitlineModel, u_l_max: float, u_r_min: float, headroom_v: float) -> float:
    """:func:`margin_ceiling_v` from RBL_L's most units (``u_l_max``) and RBL_R's fewest (``u_r_min``)."""
    v_r_max = v_of_units(bl, u_r_min)
    v_l_min = v_of_units(bl, u_l_max)
    return (bl.keep_r + bl.mix_l) * v_r_max - (bl.keep_l - bl.mix_r) * v_l_min + headroom_v + CEILING_ROUNDING_V


@numba.njit(inline="always", **KERNEL)
def margin_ceilings_v(bl: BitlineModel, units_l, units_r, leak_max_units, ramp_end_units, u_cal_units, headroom_v,
                      ceiling_v) -> None:
    """:func:`margin_ceiling_v` of every column c < ``ceiling_v.size`` of one row (``units_l``, ``units_r``
    its bitlines' MAC units; per column the leakage at its highest rate by the last sense instant
    ``leak_max_units``, the whole ramp ``ramp_end_units``, the calibration ``u_cal_units`` and
    ``headroom_v``: :func:`column_extremes`) into ``ceiling_v``: one pass without branches, whose curve
    reads run as vector gathers (inlined into :func:`.convert.fire_comparators`, which compiles with
    ``noalias``: no per-row call)."""
    for c in range(ceiling_v.size):
        u_l_max = float(units_l[c]) + leak_max_units[c]     # (the order of margin_ceiling_v's sum)
        u_l_max += ramp_end_units[c]
        ceiling_v[c] = ceiling_of_extremes_v(bl, u_l_max, float(units_r[c]) + u_cal_units[c], headroom_v[c])


@numba.njit(inline="always", **KERNEL)
def column_extremes(bl: BitlineModel, ramp: RampColumns, leak, n_steps: int, leak_max_units, ramp_end_units) -> None:
    """Per column c < ``leak_max_units.size``, what :func:`margin_ceilings_v` adds to RBL_L's MAC units:
    the leakage at its highest relative rate by the last sense instant, and the whole ramp."""
    for c in range(leak_max_units.size):
        leak_max_units[c] = leak[c] * bl.leak_rel_max * bl.t_sense_units[n_steps]
        ramp_end_units[c] = ramp.u_ramp_after_units[c, n_steps]


#: what the ceiling adds for the rounding of the sums it bounds (V; the model's values are ~1 V)
CEILING_ROUNDING_V = 1e-9


@numba.njit(**KERNEL)
def _decide_two(row_noise, key_index, j0, g_hi, g_lo, n_steps, sigma_noise_v, sure_v) -> int:
    """:func:`_decide_in_noise_window` for a window of two decisions (h = 1): j0 − 1 (margin ``g_lo``),
    then j0 (``g_hi``), the first that fires wins. Both draws' uniforms are taken up front (independent
    hashes: they overlap in the processor), each used only where its decision lies within Z_MAX·σ of
    the threshold. Out of line (scalars only: a cheap call), so that it compiles once."""
    u1_below, u2_below = decision_uniforms(row_noise, key_index, 0)
    u1_at, u2_at = decision_uniforms(row_noise, key_index, 1)
    if 1 <= j0 - 1 <= n_steps and (g_lo > sure_v or (g_lo > -sure_v and box_muller_lifts(u1_below, u2_below, g_lo,
                                                                                            sigma_noise_v))):
        return j0 - 1
    if 1 <= j0 <= n_steps and (g_hi > sure_v or (g_hi > -sure_v and box_muller_lifts(u1_at, u2_at, g_hi,
                                                                                      sigma_noise_v))):
        return j0
    return min(j0 + 1, n_steps + 1)


@numba.njit(**KERNEL)
def _decide_four(row_noise, key_index, j0, g_outer_below, g_lo, g_hi, g_outer_above, n_steps, sigma_noise_v,
                 sure_v) -> int:
    """:func:`_decide_in_noise_window` for a window of four decisions (h = 2) where g rises, from their
    four margins, g(j0 − 2), g(j0 − 1) = ``g_lo``, g(j0) = ``g_hi``, g(j0 + 1) (taken in vector passes
    over the list, :func:`firing_cycles_where_g_rises`): the same decisions in the same order, the
    first that fires wins; a decision before j0 − 1 is skipped where g(j0 − 1) lies Z_MAX·σ or more below
    the threshold (g rises). Out of line (scalars only: a cheap call)."""
    if j0 > n_steps and g_hi <= -sure_v:
        return j0
    for w in range(1 if g_lo <= -sure_v else 0, 4):
        j = j0 - 2 + w
        if j < 1 or j > n_steps:
            continue
        g = g_outer_below if w == 0 else g_lo if w == 1 else g_hi if w == 2 else g_outer_above
        if g > sure_v:
            return j
        if g > -sure_v and noise_lifts_above_zero(row_noise, key_index, w, g, sigma_noise_v):
            return j
    return min(j0 + 2, n_steps + 1)


@numba.njit(inline="always", **KERNEL)
def _decide_in_noise_window(bl, ramp, col, u_l0, u_r0, leak, n_steps, half_window, sigma_noise_v, row_noise, key_index,
                            rising, j0, g_hi, g_lo) -> int:
    """The firing cycle from the noiseless crossing (j0, g(j0), g(j0 − 1)): the noise window's
    decisions in order, the first that fires wins (module docstring); ``rising``: g rises with the
    cycle (the crossing came from :func:`_crossing_from_bracket`, not the scan)."""
    h = half_window
    sure = Z_MAX * sigma_noise_v
    if sigma_noise_v == 0.0:
        return j0
    # a decision further than Z_MAX·σ from the threshold is sure and needs no draw
    if j0 > n_steps and g_hi <= -sure:
        return j0               # g_hi bounds the window's decisions: g(n_steps) where g rises
    if h == 1:      # the usual window (σ ≈ 0.1 LSB): two decisions
        return _decide_two(row_noise, key_index, j0, g_hi, g_lo, n_steps, sigma_noise_v, sure)
    # where g rises, the decisions before j0 − 1 lie below g(j0 − 1)
    first = h - 1 if rising and g_lo <= -sure else 0
    for w in range(first, 2 * h):
        j = j0 - h + w
        if j < 1 or j > n_steps:
            continue
        if w == h:
            g = g_hi
        elif w == h - 1:
            g = g_lo
        else:
            g = _margin_in_window(bl, ramp, col, j, u_l0, u_r0, leak)
        if g > sure:
            return j
        if g > -sure and noise_lifts_above_zero(row_noise, key_index, w, g, sigma_noise_v):
            return j
    return min(j0 + h, n_steps + 1)


@numba.njit(**KERNEL)
def firing_cycles_where_g_rises(bl: BitlineModel, ramp: RampColumns, units, n_wide: int, leak, near_row, near_col, g_last,
                                n_steps: int, t_clk_units: float, half_window: int, sigma_noise_v: float,
                                key, batch: int, row0: int, key0: int, firing, j_first, g_below, g_at, cycles,
                                g_above) -> None:
    """The ramp cycle (1…n_steps, or n_steps + 1: never) at which each listed column fires, into
    ``firing``: the listed columns (``near_row[i]``, ``near_col[i]``) of a group of rows (the group's row r
    is row ``row0`` + r of ``firing`` and of the noise; its bitlines' units are ``units[r, c]`` (U_L) and
    ``units[r, n_wide + c]`` (U_R), as :func:`.convert.fire_comparators` says) where g surely rises
    with the cycle (:func:`g_rises`) and g(n_steps) = ``g_last[i]`` is above −Z_MAX·σ. Where g(n_steps) > 0
    the noiseless crossing j0 lies inside the ramp (:func:`first_guesses`, g there and one cycle before, then
    :func:`_crossing_from_bracket`); otherwise it never
    fires without noise (j0 = n_steps + 1) and only the noise window's decisions can fire it. Then the
    noise window's decisions in order (module docstring). One call per group of rows, out of line:
    the crossing search and the noise window are compiled once, and the other columns pay no call.

    A window of four decisions (h = 2: a window chosen for the scores has a small LSB) takes its outer
    two, g(j0 − 2) and g(j0 + 1), in two vector passes over the list once every crossing is known
    (``cycles`` int64 and ``g_above`` float scratch of the list's size; ``g_last`` is free by then and
    holds g(j0 − 2)), and decides from the four (:func:`_decide_four`)."""
    if n_steps >= 2:
        first_guesses(bl, ramp, units, n_wide, leak, near_row, near_col, n_steps, t_clk_units, j_first)
        for i in range(near_row.size):
            j_first[i] -= 1
        margins_at_cycles(bl, ramp, units, n_wide, leak, near_row, near_col, j_first, g_below)
        for i in range(near_row.size):
            j_first[i] += 1
        margins_at_cycles(bl, ramp, units, n_wide, leak, near_row, near_col, j_first, g_at)
    four = half_window == 2 and sigma_noise_v != 0.0
    r_noise = -1
    row_noise = np.uint64(0)
    for i in range(near_row.size):
        r = near_row[i]
        c = near_col[i]
        if r != r_noise:        # the list runs row by row
            r_noise = r
            row_noise = row_stream(key, batch, row0 + r)
        u_l0 = float(units[r, c])
        u_r0 = float(units[r, n_wide + c])
        if g_last[i] > 0.0 and n_steps < 2:
            j0, g_hi, g_lo = 1, g_last[i], g_last[i]      # a one-cycle ramp that fires fires in cycle 1
        elif g_last[i] > 0.0:
            # (at j0 = n_steps the bracket's g is g(n_steps) computed again: the list's own value is used)
            j0, g_hi, g_lo = _crossing_from_bracket(bl, ramp, c, u_l0, u_r0, leak[c], n_steps, g_last[i], j_first[i],
                                                    g_below[i], g_last[i] if j_first[i] == n_steps else g_at[i])
        else:                   # g rises, so g(n_steps) bounds the window's decisions
            j0, g_hi, g_lo = n_steps + 1, g_last[i], g_last[i]
        if four:
            j_first[i] = j0
            g_at[i] = g_hi
            g_below[i] = g_lo
            continue
        firing[row0 + r, c] = _decide_in_noise_window(bl, ramp, c, u_l0, u_r0, leak[c], n_steps, half_window, sigma_noise_v,
                                               row_noise, key0 + c, True, j0, g_hi, g_lo)
    if not four:
        return
    g_outer_below = g_last
    for i in range(near_row.size):
        cycles[i] = max(j_first[i] - 2, 1)          # (a cycle outside the ramp is not decided)
    margins_at_cycles(bl, ramp, units, n_wide, leak, near_row, near_col, cycles, g_outer_below)
    for i in range(near_row.size):
        cycles[i] = min(j_first[i] + 1, n_steps)
    margins_at_cycles(bl, ramp, units, n_wide, leak, near_row, near_col, cycles, g_above)
    sure_v = Z_MAX * sigma_noise_v
    r_noise = -1
    for i in range(near_row.size):
        r = near_row[i]
        if r != r_noise:
            r_noise = r
            row_noise = row_stream(key, batch, row0 + r)
        firing[row0 + r, near_col[i]] = _decide_four(row_noise, key0 + near_col[i], j_first[i], g_outer_below[i],
                                                     g_below[i], g_at[i], g_above[i], n_steps, sigma_noise_v, sure_v)


@numba.njit(**NO_OVERLAP_KERNEL)
def margins_at_cycles(bl, ramp, units, n_wide, leak, rows, cols, cycles, g) -> None:
    """g(``cycles[i]``) of each listed column (``rows[i]``, ``cols[i]``, units as
    :func:`firing_cycles_where_g_rises` reads them) into ``g[i]``: one pass without branches, whose table
    reads run as vector gathers (``noalias``: the output overlaps no input). Every pass over a list that
    evaluates g is this one (its code is compiled once). The list's rows, columns and cycles index as
    unsigned integers (they are not negative), so that no code handles negative indices."""
    wide = np.uint64(n_wide)
    for i in range(rows.size):
        r = np.uint64(rows[i])
        c = np.uint64(cols[i])
        g[i] = decision_margin_v(bl, ramp, c, np.uint64(cycles[i]), float(units[r, c]), float(units[r, wide + c]),
                                 leak[c])


@numba.njit(**NO_OVERLAP_KERNEL)
def g_rises_listed(bl, ramp, units, n_wide, leak, rows, cols, n_steps: int, t_clk_units: float, rises) -> None:
    """:func:`g_rises` of each listed column (as :func:`margins_at_cycles`) into ``rises[i]`` (1 or 0):
    one pass without branches (vector gathers)."""
    for i in range(rows.size):
        r = rows[i]
        c = cols[i]
        rises[i] = g_rises(bl, ramp, c, float(units[r, c]), float(units[r, n_wide + c]), leak[c], n_steps, t_clk_units)


@numba.njit(**KERNEL)
def firing_cycles_by_scan(bl: BitlineModel, ramp: RampColumns, units, n_wide: int, leak, flat_row, flat_col,
                          n_steps: int, t_clk_units: float, half_window: int, sigma_noise_v: float, key, batch: int,
                          row0: int, key0: int, firing, g_1, cycles) -> None:
    """:func:`firing_cycles_where_g_rises` for the listed columns of a group of rows where g need
    not rise (on the flat end of the curve), so the first crossing is found by
    :func:`_first_crossing_by_scan`, into ``firing``. One call per group of rows, out of line: a top-k's
    columns rarely come here (inputs that drive both bitlines onto the flat end of the curve, as
    saturating rows do), and inlining the scan made the kernels compile 4 s longer.

    Every listed column's g(1) comes first, into ``g_1`` (scratch, ≥ the list's size; ``cycles``: int64
    scratch of that size), in one pass (:func:`margins_at_cycles`); a column whose g(1) lies more than Z_MAX·σ above the threshold fires
    in cycle 1, noise or not (what the scan and the noise window would find), and needs nothing else."""
    sure = Z_MAX * sigma_noise_v
    for i in range(flat_row.size):
        cycles[i] = 1
    margins_at_cycles(bl, ramp, units, n_wide, leak, flat_row, flat_col, cycles, g_1)
    r_noise = -1
    row_noise = np.uint64(0)
    for i in range(flat_row.size):
        if g_1[i] > sure:
            firing[row0 + flat_row[i], flat_col[i]] = 1
            continue
        r = flat_row[i]
        c = flat_col[i]
        if r != r_noise:
            r_noise = r
            row_noise = row_stream(key, batch, row0 + r)
        u_l0 = float(units[r, c])
        u_r0 = float(units[r, n_wide + c])
        j0, g_hi, g_lo = _first_crossing_by_scan(bl, ramp, c, u_l0, u_r0, leak[c], n_steps, t_clk_units,
                                                 n_steps + 1 - half_window, sure, g_1[i])
        firing[row0 + r, c] = _decide_in_noise_window(bl, ramp, c, u_l0, u_r0, leak[c], n_steps, half_window, sigma_noise_v,
                                               row_noise, key0 + c, False, j0, g_hi, g_lo)
