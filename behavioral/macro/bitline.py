"""The read bitlines RBL_L / RBL_R: discharge curve, leakage, sense instants, and what the
attached sense amplifier does to them.

* **Discharge curve f.** V(RBL) after ``units`` accumulated nominal-cell units: the artefact's
  SPICE curve, interpolated linearly between its points (as ``numpy.interp``; flat beyond its
  ends). Exact for cells whose current depends only on V(RBL). The kernels keep it on a uniform
  grid small enough to stay in the processor's first-level cache: the artefact's own points
  when they are evenly spaced (``topkima calibrate`` writes 257 such points: ``numpy.interp``),
  else a linear resampling at four times their density (a few µV off). Its points, and those of
  the leakage's relative rate and the overdrive integral, are held in a 32-bit fixed point whose
  rounding moves them by at most 2⁻³⁰ of the table's largest value (0.5 nV on the curve), so
  that a point's value and step are one word (:mod:`.packed_table`: half the table reads).
* **Leakage.** Idle stacks leak ``leak1`` / ``leak0`` units per PWM unit (stored 1 / 0, from the
  artefact's leakage table at 0.45 V, see :func:`params_from_calibration`); a column's bitlines
  carry Σ|digit| stored 1s of its keys among the 2·elements·scales MAC stacks + the replica
  ports, one per calibration and ramp replica row (32 + 32 in the paper's column).
  **The leakage follows the bitline's level** (subthreshold current against drain voltage: DIBL):
  by sense instant t_j a bitline has leaked leak·t_j·ρ(ū), ρ the column's droop rate relative to
  its rate at 0.45 V (artefact ``column.bitline_droop``, measured by ``topkima calibrate-droop``;
  1 without it) and ū the bitline's mean level over [0, t_j] in curve units: its MAC units, plus its
  calibration (RBL_R) or ramp (RBL_L) units weighted by the mean time they have been there
  (:func:`leak_units`), plus half the leakage. This is what bows the ramp: early steps, at a
  higher level, carry more leakage than late ones (docs/behavioral-model.md).
* **Sense instants.** Ramp cycle j is sensed at t_cal_start − t_mac_start + j·t_clk + t_sa_clk
  after the start of the MAC phase (the column testbench's clocking).
* **In-situ correction.** The curve is measured on bitlines loaded by the sense amplifier's reset
  input only. In the macro its input pair also couples the two floating bitlines, its first
  evaluation leaves a kick residue and its clocking adds a slow drift. Per bitline X ∈ {L, R},

      V_X ← V_X + c_X · [1, j − 1, [j = 1], V0 − V_L, V0 − V_R]

  at the sense instant of cycle j (V0: the precharged level), least-squares fitted to the
  artefact's nominal column + sense-amplifier conversions (``column.insitu_conversions``); their
  sense-amplifier energies give the energy per decision as a line in the common mode, beside the
  comparator bench's overdrive term: e = a + b·CM + κ·ln(V_ref / |V_R − V_L|) (|V_R − V_L| clamped
  to the bench's overdrives, :func:`topkima.behavioral.params.decision_energy_overdrive`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numba
import numpy as np

from topkima.behavioral.macro.packed_table import fixed_point_table, grid_index, interpolate
from topkima.behavioral.macro.runtime import KERNEL
from topkima.behavioral.params import MacroParams

#: resampling density of an unevenly spaced discharge curve (points per artefact point)
CURVE_RESAMPLING = 4


class BitlineModel(NamedTuple):
    """What the kernels read of the bitline physics (one macro, any chip)."""

    curve_v: np.ndarray            #: f on a uniform grid of units from 0 (V; in the fixed point of …) …
    curve_dv: np.ndarray           #: … and its step to the next grid point (0 at the last) …
    curve_words: np.ndarray        #: … both packed, what the kernels read (:mod:`.packed_table`) …
    curve_scale_v: float           #: … and its scale
    points_per_unit: float         #: 1 / the grid step
    last_index: int
    inv_v0_v: float                #: approximate inverse of f on a voltage grid (crossing search only)
    inv_dv_v: float
    units_of_v_table: np.ndarray
    keep_l: float                  #: V_L ← keep_l·V_L − mix_l·V_R + offset_l[j]  (in-situ correction)
    mix_l: float
    mix_r: float                   #: V_R ← mix_r·V_L + keep_r·V_R + offset_r[j]
    keep_r: float
    offset_l_v: np.ndarray         #: (n_steps + 2,) per cycle j = 0 … n_steps + 1
    offset_r_v: np.ndarray
    t_sense_units: np.ndarray      #: (n_steps + 2,) sense instant of cycle j after the MAC start, PWM units
    e_decision_at_0_j: float       #: sense-amplifier energy per decision: a + b·CM …
    e_decision_per_v: float        #: … its slope in the common mode …
    e_decision_per_ln_od_j: float  #: … + κ·ln(od_ref / |V_R − V_L|), |V_R − V_L| clamped to [od_min, od_max]
    od_min_v: float
    od_max_v: float
    od_ref_v: float
    fall_max_from_v: np.ndarray    #: per grid point, the curve's steepest fall per grid step from there on (V)
    drift_v_per_cycle: float       #: the largest change of offset_r − offset_l from one cycle to the next
    drift_l_v_per_cycle: float     #: the largest change of offset_l from cycle j to j + 1, j ≥ 2
    drift_r_v_per_cycle: float     #: the same of offset_r …
    drift_rl_v_per_cycle: float    #: … and of offset_r − offset_l
    drift_cm_v_per_cycle: float    #: the largest change of (offset_l + offset_r) / 2 from one cycle to the next
    od_integral_words: np.ndarray  #: ∫₀ᵃ ln(od_ref / clamp(t)) dt on a uniform grid of a over 0 … od_max, packed (:mod:`.packed_table`) …
    od_integral_scale: float       #: … and its scale
    od_integral_points_per_v: float
    ln_od_ref_over_max: float      #: the integrand beyond od_max
    leak_rel: np.ndarray           #: idle-stack leakage relative to its rate at 0.45 V, on the curve's grid (fixed point) …
    leak_rel_d: np.ndarray         #: … and its step to the next grid point …
    leak_rel_words: np.ndarray     #: … both packed (:mod:`.packed_table`) …
    leak_rel_scale: float          #: … and its scale
    leak_rel_max: float            #: its largest value (bounds of the crossing search)
    ramp_age_frac: np.ndarray      #: (n_steps + 2,) mean time since the ramp's steps at sense instant j / t_j
    cal_age_frac: np.ndarray       #: (n_steps + 2,) time since the calibration pulse at sense instant j / t_j


def leak_ages(p: MacroParams) -> tuple[np.ndarray, np.ndarray]:
    """(ramp, calibration) per sense instant j = 0 … n + 1: the mean time since the ramp's steps 1 … j
    (0 for j = 0) and the time since the calibration pulse, each at its pulse's centre and divided by
    t_j (the instant's time after the MAC start): a bitline's mean level over [0, t_j] is its MAC units
    plus these fractions of its ramp / calibration units (:func:`leak_units`).

    The pulses' centres are those of the characterised window's pulses (the in-situ runs', 4 units),
    whatever window ``p`` carries, so that one bitline model serves every window of a chip; another
    window's pulse centre lies at most 1 unit away (a leakage change of a few µV)."""
    t = sense_instants_units(p)
    j = np.arange(t.size)
    clk, sense = p.t_clk_ima_s / p.t_unit_s, p.t_sa_clk_in_cycle_s / p.t_unit_s
    delay = p.t_pulse_delay_s / p.t_unit_s
    _, t_cal_units, t_ramp_units = p.insitu[1]
    ramp_age = np.where(j >= 1, clk * (j - 1) / 2 + sense - delay - 0.5 * t_ramp_units, 0.0)
    cal_age = clk * j + sense - delay - 0.5 * t_cal_units
    return np.clip(ramp_age / t, 0.0, 1.0), np.clip(cal_age / t, 0.0, 1.0)


def sense_instants_units(p: MacroParams) -> np.ndarray:
    """Time of ramp cycle j's sense instant after the start of the MAC phase (PWM units), j = 0 … n + 1."""
    j = np.arange(p.n_ramp_steps + 2)
    return (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / p.t_unit_s


def uniform_curve(curve_units: np.ndarray, curve_v: np.ndarray) -> tuple[np.ndarray, float]:
    """(V on a uniform grid of units starting at 0, the grid's points per unit): the artefact's
    points when they are evenly spaced from 0, else a resampling at :data:`CURVE_RESAMPLING`× density."""
    u = np.asarray(curve_units, float)
    step = np.diff(u)
    if u[0] == 0.0 and step.size and np.ptp(step) <= 1e-9 * step.mean():
        return np.asarray(curve_v, float).copy(), 1.0 / float(step.mean())
    grid = np.linspace(0.0, u[-1], CURVE_RESAMPLING * (u.size - 1) + 1)
    return np.interp(grid, u, curve_v), 1.0 / float(grid[1] - grid[0])


@dataclass(frozen=True)
class InsituCorrection:
    """The fitted in-situ correction (see the module docstring) and the decision energy line."""

    coef_l_v: np.ndarray       #: (5,) correction of V_L, terms as above
    coef_r_v: np.ndarray       #: (5,) correction of V_R
    rms_residual_v: float      #: what the fit leaves, over all runs and instants
    e_decision_a_j: float      #: energy per decision at CM = 0 (and the reference overdrive)
    e_decision_b_j_per_v: float  #: its slope in the common mode

    def e_per_decision_j(self, v_cm):
        """Sense-amplifier energy per decision at the bitlines' common mode, at the reference overdrive."""
        return self.e_decision_a_j + self.e_decision_b_j_per_v * np.asarray(v_cm)


def overdrive_log(p: MacroParams, v_diff) -> np.ndarray:
    """ln(V_ref / |V_R − V_L|) with |V_R − V_L| clamped to the comparator bench's overdrives (numpy)."""
    od = np.clip(np.abs(np.asarray(v_diff, float)), p.sa_overdrive_min_v, p.sa_overdrive_max_v)
    return np.log(p.sa_overdrive_ref_v / od)


def bitline_model(p: MacroParams, curve_v: np.ndarray, insitu: InsituCorrection | None) -> BitlineModel:
    """Kernel tables for curve ``curve_v`` (on ``p.curve_units``) and an in-situ correction (None: none).
    The decision energy's overdrives must be finite with 0 < min ≤ max and a positive reference whose
    ratio to each is a normal float (the energy pass takes :func:`ln_in_place` of those ratios)."""
    check_overdrives(p.sa_overdrive_min_v, p.sa_overdrive_max_v, p.sa_overdrive_ref_v)
    table, points_per_unit = uniform_curve(p.curve_units, curve_v)
    v_grid = np.linspace(table[-1], table[0], 8193)
    inv = np.interp(-v_grid, -curve_v, p.curve_units).astype(np.float32)
    n_j = p.n_ramp_steps + 2
    if insitu is None:
        keep_l = keep_r = 1.0
        mix_l = mix_r = 0.0
        off_l = off_r = np.zeros(n_j)
        e_a, e_b = p.e_per_decision_j, 0.0
        kappa = 0.0
    else:
        cl, cr = insitu.coef_l_v, insitu.coef_r_v
        v0 = float(p.curve_v[0])
        jj = np.arange(n_j)
        off_l = cl[0] + cl[1] * (jj - 1) + cl[2] * (jj == 1) + (cl[3] + cl[4]) * v0
        off_r = cr[0] + cr[1] * (jj - 1) + cr[2] * (jj == 1) + (cr[3] + cr[4]) * v0
        keep_l, mix_l, mix_r, keep_r = 1 - cl[3], cl[4], -cr[3], 1 - cr[4]
        e_a, e_b = insitu.e_decision_a_j, insitu.e_decision_b_j_per_v
        kappa = p.sa_e_per_ln_overdrive_j
    curve_words, table, dv, curve_scale = fixed_point_table(table)
    if p.leak_rel_at_curve is None:
        rel = np.ones_like(table)
    else:
        rel, _ = uniform_curve(p.curve_units, p.leak_rel_at_curve)
    rel_words, rel, rel_d, rel_scale = fixed_point_table(rel)
    od_table, od_points_per_v, ln_beyond = overdrive_integral_table(float(p.sa_overdrive_min_v),
                                                                    float(p.sa_overdrive_max_v), float(p.sa_overdrive_ref_v))
    od_words, _, _, od_scale = fixed_point_table(od_table)
    ramp_age, cal_age = leak_ages(p)
    return BitlineModel(table, dv, curve_words, curve_scale, points_per_unit, table.size - 1, float(v_grid[0]),
                        float(v_grid[1] - v_grid[0]), inv, float(keep_l), float(mix_l), float(mix_r), float(keep_r),
                        np.ascontiguousarray(off_l, float), np.ascontiguousarray(off_r, float),
                        sense_instants_units(p), float(e_a), float(e_b), float(kappa),
                        float(p.sa_overdrive_min_v), float(p.sa_overdrive_max_v), float(p.sa_overdrive_ref_v),
                        np.ascontiguousarray(np.maximum.accumulate((-dv)[::-1])[::-1]),
                        float(np.max(np.abs(np.diff((off_r - off_l)[1:])))),
                        float(np.max(np.abs(np.diff(off_l[2:])), initial=0.0)),
                        float(np.max(np.abs(np.diff(off_r[2:])), initial=0.0)),
                        float(np.max(np.abs(np.diff((off_r - off_l)[2:])), initial=0.0)),
                        float(0.5 * np.max(np.abs(np.diff((off_l + off_r)[1:])))),
                        od_words, od_scale, od_points_per_v, ln_beyond,
                        rel, rel_d, rel_words, rel_scale, float(rel.max()),
                        np.ascontiguousarray(ramp_age, float), np.ascontiguousarray(cal_age, float))


def check_overdrives(od_min_v: float, od_max_v: float, od_ref_v: float) -> None:
    """A ValueError naming the decision energy's overdrive parameters unless 0 < od_min ≤ od_max and
    od_ref > 0, all finite, with od_ref / od_max and od_ref / od_min normal floats."""
    values = np.array([od_min_v, od_max_v, od_ref_v], dtype=float)
    tiny, huge = np.finfo(float).tiny, np.finfo(float).max
    ok = bool(np.all(np.isfinite(values)) and 0.0 < od_min_v <= od_max_v and od_ref_v > 0.0)
    ok = ok and all(tiny <= od_ref_v / x <= huge for x in (od_min_v, od_max_v))
    if not ok:
        raise ValueError(f"the decision energy's overdrives must be finite with 0 < sa_overdrive_min_v ≤ "
                         f"sa_overdrive_max_v and sa_overdrive_ref_v > 0 within 1e±300 of them; got min "
                         f"{od_min_v!r}, max {od_max_v!r}, ref {od_ref_v!r} V (the artefact's comparator.energy)")


@numba.njit(inline="always", **KERNEL)
def v_of_units(bl: BitlineModel, units: float) -> float:
    """f: V(RBL) after ``units`` accumulated units (linear between grid points; flat beyond the ends)."""
    x = units * bl.points_per_unit
    # clamped to the grid by selects, not branches (the column loops then vectorise): at an end
    # the fraction is 0 and the end point is returned exactly
    x = x if x > 0.0 else 0.0
    x = x if x < bl.last_index else float(bl.last_index)
    return interpolate(bl.curve_words, bl.curve_scale_v, x)


@numba.njit(**KERNEL)
def leak_units(bl: BitlineModel, j: int, leak: float, u_mac: float, u_phase: float, age_frac: float) -> float:
    """Units a bitline has leaked by sense instant j: ``leak`` (units per PWM unit at 0.45 V) · t_j ·
    the relative rate at its mean level over [0, t_j] (``u_mac`` MAC units, ``u_phase`` calibration or
    ramp units there for the fraction ``age_frac`` of the time, half the leakage; module docstring)."""
    t = bl.t_sense_units[j]
    x = (u_mac + u_phase * age_frac + 0.5 * leak * t) * bl.points_per_unit
    x = x if x > 0.0 else 0.0
    x = x if x < bl.last_index else float(bl.last_index)
    return leak * t * interpolate(bl.leak_rel_words, bl.leak_rel_scale, x)


def leak_units_array(bl: BitlineModel, j, leak, u_mac, u_phase, age_frac) -> np.ndarray:
    """:func:`leak_units` over arrays (numpy; for studies and fits, not the hot path): the same arithmetic."""
    t = bl.t_sense_units[j]
    x = np.clip((np.asarray(u_mac, float) + u_phase * age_frac + 0.5 * leak * t) * bl.points_per_unit,
                0.0, float(bl.last_index))
    i = np.minimum(x.astype(np.intp), bl.last_index)
    return leak * t * (bl.leak_rel[i] + (x - i) * bl.leak_rel_d[i])


@numba.njit(inline="always", **KERNEL)
def units_of_v_estimate(bl: BitlineModel, v: float) -> float:
    """Approximate inverse of f (only used to start the crossing search)."""
    x = (np.float32(v) - np.float32(bl.inv_v0_v)) / np.float32(bl.inv_dv_v)
    return float(bl.units_of_v_table[grid_index(x, bl.units_of_v_table.size - 1)])


@numba.njit(inline="always", **KERNEL)
def sensed_bitlines(bl: BitlineModel, j: int, units_l: float, units_r: float):
    """(V_L, V_R) the comparator sees at the sense instant of cycle j: f, then the in-situ correction."""
    v_l = v_of_units(bl, units_l)
    v_r = v_of_units(bl, units_r)
    new_l = bl.keep_l * v_l
    new_l -= bl.mix_l * v_r
    new_l += bl.offset_l_v[j]
    new_r = bl.mix_r * v_l
    new_r += bl.keep_r * v_r
    new_r += bl.offset_r_v[j]
    return new_l, new_r


def v_of_units_array(bl: BitlineModel, units: np.ndarray) -> np.ndarray:
    """f over an array (numpy; for studies and fits, not the hot path): the same arithmetic."""
    x = np.clip(np.asarray(units, float) * bl.points_per_unit, 0.0, float(bl.last_index))
    i = np.minimum(x.astype(np.intp), bl.last_index)
    return bl.curve_v[i] + (x - i) * bl.curve_dv[i]


def fit_insitu_correction(p: MacroParams, runs_units) -> InsituCorrection:
    """Fit :class:`InsituCorrection` to the artefact's in-situ conversions (nominal devices).

    ``runs_units(p_runs)``: for the runs' own ADC setting ``p_runs``, each run's modelled
    (U_L, U_R, leak, U_cal, U_ramp after cycle j) before the correction — given by the caller so
    that this module needs no MAC.

    The runs hold the sense instants of the characterised ramp (32 in the committed artefact); a
    macro with a longer ramp (a what-if, :mod:`topkima.studies.circuit_whatif`) is fitted on those
    instants and extrapolates the correction's drift term, linear in j − 1, to its later cycles."""
    runs, (n_cal, t_cal, t_ramp) = p.insitu
    n_measured = len(runs[0]["v_rbl_l_at_sa_clk_v"])
    if n_measured > p.n_ramp_steps:
        raise ValueError(f"the in-situ conversions hold {n_measured} sense instants; the macro's ramp has only "
                         f"{p.n_ramp_steps} steps")
    p_runs = replace(p, n_cal=n_cal, t_cal_units=t_cal, t_ramp_units=t_ramp)
    u_l, u_r, leak, u_cal, u_ramp_cum = runs_units(p_runs)
    bl = bitline_model(p_runs, p.curve_v, None)
    n_runs = len(runs)
    v0 = float(p.curve_v[0])
    feats, res_l, res_r = [], [], []
    for j in range(1, n_measured + 1):
        v_l = v_of_units_array(bl, u_l + leak_units_array(bl, j, leak, u_l, u_ramp_cum[:, j], bl.ramp_age_frac[j])
                               + u_ramp_cum[:, j])
        v_r = v_of_units_array(bl, u_r + leak_units_array(bl, j, leak, u_r, u_cal, bl.cal_age_frac[j]) + u_cal)
        feats.append(np.column_stack([np.ones(n_runs), np.full(n_runs, j - 1.0), np.full(n_runs, float(j == 1)),
                                      v0 - v_l, v0 - v_r]))
        res_l.append(np.array([run["v_rbl_l_at_sa_clk_v"][j - 1] for run in runs]) - v_l)
        res_r.append(np.array([run["v_rbl_r_at_sa_clk_v"][j - 1] for run in runs]) - v_r)
    a = np.concatenate(feats)
    b_l, b_r = np.concatenate(res_l), np.concatenate(res_r)
    coef_l = np.linalg.lstsq(a, b_l, rcond=None)[0]
    coef_r = np.linalg.lstsq(a, b_r, rcond=None)[0]
    rms = float(np.sqrt(np.mean(np.concatenate([b_l - a @ coef_l, b_r - a @ coef_r]) ** 2)))
    # energy per decision against the measured common mode (mean over the measured instants), net
    # of the bench's overdrive term at the measured V_R − V_L of each decision
    cm = np.array([0.5 * (run["v_rbl_l_at_sa_clk_v"] + run["v_rbl_r_at_sa_clk_v"]).mean() for run in runs])
    od_term = np.array([overdrive_log(p, run["v_rbl_r_at_sa_clk_v"] - run["v_rbl_l_at_sa_clk_v"]).mean() for run in runs])
    e_dec = np.array([run["e_sa_32_decisions_j"] / n_measured for run in runs]) - p.sa_e_per_ln_overdrive_j * od_term
    if n_runs >= 3 and np.ptp(cm) > 0.02:
        slope, intercept = np.polyfit(cm, e_dec, 1)
    else:  # too little spread for a slope: the mean
        slope, intercept = 0.0, float(e_dec.mean())
    return InsituCorrection(coef_l, coef_r, rms, float(intercept), float(slope))


def stored_ones(levels: np.ndarray) -> np.ndarray:
    """Stacks storing 1 per column (Σ over elements of the popcount of |level|), (..., n)."""
    lv = np.abs(np.asarray(levels, np.int64))
    if lv.size and lv.max() < _POPCOUNT.size:
        return _POPCOUNT[lv].sum(axis=-2)
    count = np.zeros(lv.shape, np.int64)
    while np.any(lv):
        count += lv & 1
        lv >>= 1
    return count.sum(axis=-2)


#: popcount of 0 … 255 (|key levels| of the macro's arrays are at most 7)
_POPCOUNT = np.array([bin(x).count("1") for x in range(256)], dtype=np.int64)


def replica_ports(p: MacroParams) -> int:
    """Read ports on a column's bitlines beyond its key cells: its calibration and ramp replica rows."""
    return p.n_cal_rows + p.n_ramp_rows


class LeakModel(NamedTuple):
    """Leakage of a column's bitlines (units per PWM unit): per idle stack storing 1 or 0."""

    per_stored_one: float
    per_stored_zero: float
    n_stacks: int           #: stacks on each bitline: 2·elements·scales MAC stacks + the replica ports


def leak_model(p: MacroParams, n_elements: int, n_scales: int, linear: bool) -> LeakModel:
    """The leakage of an array's columns (none in the ideal macro)."""
    if linear:
        return LeakModel(0.0, 0.0, 0)
    return LeakModel(float(p.leak1_units_per_unit), float(p.leak0_units_per_unit),
                     2 * n_elements * n_scales + replica_ports(p))


def leak_units_per_unit(p: MacroParams, levels: np.ndarray, n_elements: int, n_scales: int, linear: bool) -> np.ndarray:
    """Leakage (units per PWM unit) of each column's bitlines; both carry Σ|digit| stored 1s among
    the 2·elements·scales MAC stacks and the replica ports (none in the ideal macro)."""
    if linear:
        return np.zeros(np.shape(levels)[:-2] + np.shape(levels)[-1:])
    lm = leak_model(p, n_elements, n_scales, linear)
    n1 = stored_ones(levels).astype(float)
    return lm.per_stored_one * n1 + lm.per_stored_zero * (lm.n_stacks - n1)


@numba.njit(**KERNEL)
def column_leak(lm: LeakModel, levels, n: int, out) -> None:
    """:func:`leak_units_per_unit` of columns c < n of one key set (``levels`` (d, ≥ n) int8) into ``out``."""
    for c in range(n):
        out[c] = 0.0
    if lm.n_stacks == 0:
        return
    for e in range(levels.shape[0]):        # stored 1s per column: the popcount of |level| (≤ 128)
        for c in range(n):
            m = abs(np.int32(levels[e, c]))
            out[c] += ((m & 1) + ((m >> 1) & 1) + ((m >> 2) & 1) + ((m >> 3) & 1) + ((m >> 4) & 1) + ((m >> 5) & 1)
                       + ((m >> 6) & 1) + ((m >> 7) & 1))
    for c in range(n):
        n1 = out[c]
        out[c] = lm.per_stored_one * n1 + lm.per_stored_zero * (lm.n_stacks - n1)


#: intervals of the overdrive term's integral table over 0 … od_max
OD_INTEGRAL_INTERVALS = 4096


def log_integral(a, od_min_v: float, od_max_v: float, od_ref_v: float):
    """∫₀ᵃ ln(od_ref / clamp(t)) dt for a ≥ 0 (numpy), clamp to [od_min, od_max]: with b = clamp(a),
    a·ln(od_ref / b) + b − od_min (below od_min the integrand is flat at ln(od_ref / od_min),
    between the two ∫ ln(od_ref / t) dt = t·ln(od_ref / t) + t, above od_max flat again)."""
    b = np.clip(a, od_min_v, od_max_v)
    return a * np.log(od_ref_v / b) + (b - od_min_v)


def overdrive_integral_table(od_min_v: float, od_max_v: float, od_ref_v: float) -> tuple[np.ndarray, float, float]:
    """(:func:`log_integral` on a uniform grid of 0 … od_max, grid points per volt, ln(od_ref / od_max)).
    The kernels interpolate it linearly: its slope is the integrand, whose slope is at most 1 / od_min,
    so the integral's error is at most h²/(8·od_min) (7.5e-7 V at h = 24 µV, od_min = 0.1 mV), and no
    logarithm is taken per column. A sum over decisions divides two such values' difference by the
    rise per decision, so its error per decision grows as that rise shrinks: negligible at the
    ramp's rise of about an LSB (mV) per cycle, up to 0.2 of the term where the rise is below the
    table's step (24 µV) near od_min."""
    a = np.linspace(0.0, od_max_v, OD_INTEGRAL_INTERVALS + 1)
    return (np.ascontiguousarray(log_integral(a, od_min_v, od_max_v, od_ref_v)), OD_INTEGRAL_INTERVALS / od_max_v,
            float(np.log(od_ref_v / od_max_v)))


@numba.njit(inline="always", **KERNEL)
def _log_integral(bl: BitlineModel, x: float) -> float:
    """∫₀ˣ ln(od_ref / clamp(|t|)) dt (odd in x): the table within od_max, linear beyond."""
    a = abs(x)
    b = a if a < bl.od_max_v else bl.od_max_v
    t = b * bl.od_integral_points_per_v
    out = interpolate(bl.od_integral_words, bl.od_integral_scale, t)
    out += (a - b) * bl.ln_od_ref_over_max
    return out if x >= 0.0 else -out


#: intervals of [1, 2) for :func:`ln_in_place` (its table of reciprocals and their logarithms)
LN_INTERVALS = 256
LN_RECIPROCAL = 1.0 / (1.0 + (np.arange(LN_INTERVALS) + 0.5) / LN_INTERVALS)
LN_OF_INVERSE_RECIPROCAL = -np.log(LN_RECIPROCAL)
LN_2 = float(np.log(2.0))


@numba.njit(inline="always", **KERNEL)
def ln_in_place(x, exponent) -> None:
    """x[c] ← ln x[c] for positive normal floats, in passes without branches (they run as vector
    instructions, as ``math.log`` does not): x = 2^e·m, m ∈ [1, 2) read from its bits, then
    ln x = e·ln 2 − ln r_j + ln(1 + ε), r_j ≈ 1/m the tabulated reciprocal of m's interval's centre
    (:data:`LN_INTERVALS`), ε = m·r_j − 1 (|ε| < 0.002) and ln(1 + ε) its series to ε⁶ (the next term is
    below 1e-19). Against ``numpy.log`` over 1e-300 … 1e300 (tested): within 1e-15 absolute where
    |ln x| ≤ 1, within 3e-15 relative beyond. Only for positive normal floats (the energy pass's
    ratios are, :func:`check_overdrives`). ``exponent``: float scratch of x's size."""
    bits = x.view(np.int64)
    for c in range(x.size):
        b = bits[c]
        exponent[c] = float((b >> 52) - 1023)
        bits[c] = (b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000      # m: x's mantissa, exponent 0
    for c in range(x.size):
        m = x[c]
        j = np.uint64(min((m - 1.0) * LN_INTERVALS, LN_INTERVALS - 1.0))    # (unsigned: no negative-index code)
        eps = m * LN_RECIPROCAL[j] - 1.0
        series = eps * (1.0 + eps * (-0.5 + eps * (1.0 / 3.0 + eps * (-0.25 + eps * (0.2 + eps * (-1.0 / 6.0))))))
        x[c] = exponent[c] * LN_2 + (LN_OF_INVERSE_RECIPROCAL[j] + series)


@numba.njit(inline="always", **KERNEL)
def overdrive_log_sum(bl: BitlineModel, d_first: float, d_last: float, n: int) -> float:
    """Sum of ln(od_ref / |V_R − V_L|) over ``n`` decisions whose V_R − V_L rises evenly from
    ``d_first`` to ``d_last``, each decision's term the mean over the interval it stands for
    (midpoint rule): n × the mean over [d_first − step/2, d_last + step/2], step the rise per
    decision, i.e. (n − 1)·ΔF / (d_last − d_first) with F the term's integral."""
    rise = d_last - d_first
    if n <= 1 or abs(rise) < 1e-12:        # one decision, or V_R − V_L not moving: its own term
        a = abs(d_first)
        a = a if a > bl.od_min_v else bl.od_min_v
        a = a if a < bl.od_max_v else bl.od_max_v
        return n * np.log(bl.od_ref_v / a)
    half_step = 0.5 * rise / (n - 1)
    return (n - 1) * (_log_integral(bl, d_last + half_step) - _log_integral(bl, d_first - half_step)) / rise
