"""The comparator's decision threshold measured inside the column (its in-column threshold).

Why: the behavioural model decides with the comparator's *ideal-source* offset (the linear
model of :mod:`topkima.circuits.comparator_fit`). In the column the StrongARM senses two
floating read bitlines that it kicks when it is clocked, after a history of "not fired"
decisions, with the ramp cell's wordline falling shortly before each clock edge. On the
fitting conversions (``topkima golden --set fit``) SPICE fires where V_R − V_L is a little
*below* the modelled offset; the error follows the latch NMOS pair's mismatch (docs/behavioral-model.md).

What is simulated: the full column testbench (:func:`topkima.circuits.column.column_netlist`,
real sense amplifier) on an input pattern whose comparator fires near a chosen ramp cycle j at a
chosen bitline common mode. A small ideal current pulse during the MAC phase takes (or, negative,
gives) a continuously variable charge from RBL_R; bisection on it finds where the decision of
cycle j flips between "fired by cycle j" and "not yet". The in-column threshold is
V(RBL_R) − V(RBL_L) at the sense instant of cycle j at that flip (the same quantity the golden
files store and the model compares with its offset). Holding j fixed, every run of a set decides
after the same history of j − 1 "not fired" decisions, so a device's sensitivity is not mixed
with a change of the cycle count.

Measured:

* the nominal latch on a grid of decision cycles j (its history: j − 1 earlier decisions, kicks
  and charge left on the latch's internal nodes) and bitline common modes (set by the pattern's
  total discharge), :data:`GRID_CYCLES` × :data:`GRID_N_UNITS`;
* at the base pattern and cycle :data:`BASE_CYCLE`, each of the three offset-dominant device pairs'
  first device (input pair ``mip``, latch PMOS ``mlp``, latch NMOS ``mnp``; their mirror devices
  act with the opposite sign, :data:`~topkima.circuits.comparator_fit.MIRROR_PAIRS`) shifted by
  ±2 σ, all at the same cycle.

The model (:mod:`topkima.behavioral.params`) takes from these the threshold's shift (as a
function of the common mode and the cycle, fitted in :mod:`topkima.calibration.in_column`) and
the devices' sensitivities beyond the ideal-source linear model.
"""
from __future__ import annotations

import numpy as np

from topkima.circuits.column import BLOCK as COLUMN_BLOCK
from topkima.circuits.column import ColumnConversion, ColumnDraws, column_netlist, firing_cycle
from topkima.circuits.comparator import NETLISTS as SA_NETLISTS
from topkima.circuits.comparator import checked_delvto
from topkima.circuits.comparator_fit import MIRROR_PAIRS
from topkima.circuits.jobs import Job
from topkima.circuits.netlist import num
from topkima.circuits.timing import N_RAMP_STEPS, T_MAC0_S, sa_sample_time_s, sense_instant_s

BLOCK = "comparator_column"
#: The ADC window of the conversions (the design's: 32 calibration cells × 4 units, LSB 4 units).
N_CAL, T_CAL_UNITS, T_RAMP_UNITS = 32, 4, 4
#: Units on RBL_L beyond those on RBL_R for a crossing in cycle j: P = N + N_CAL·T_CAL + 4 − 4·j
#: (the calibration phase's 128 units on RBL_R, j ramp steps of 4 on RBL_L: ideally level one cycle
#: before, one LSB above in cycle j; the bisection's current then moves it onto the threshold)
P_MINUS_N_AT_CYCLE0 = N_CAL * T_CAL_UNITS + 4
#: Products of the patterns [ours]: +15 units (q = 5, key +3) per element on RBL_L, −15 (key −3)
#: on RBL_R, the remainder one element with key ±1.
UNIT_Q, UNIT_KEY = 5, 3


def pattern(p_units: int, n_units: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(inputs, keys) of 64 elements discharging ``p_units`` ideal units on RBL_L and ``n_units`` on RBL_R."""
    inputs, keys = [], []
    for units, sign in ((int(p_units), 1), (int(n_units), -1)):
        if units < 0:
            raise ValueError(f"pattern: bitline units must be ≥ 0, got {units}")
        per = UNIT_Q * UNIT_KEY
        inputs += [UNIT_Q] * (units // per)
        keys += [sign * UNIT_KEY] * (units // per)
        if units % per:
            inputs.append(units % per)
            keys.append(sign)
    if len(inputs) > 64:
        raise ValueError(f"pattern: {p_units} + {n_units} units need {len(inputs)} elements (64 at most)")
    pad = 64 - len(inputs)
    return tuple(inputs) + (0,) * pad, tuple(keys) + (0,) * pad


def pattern_for(n_units: int, cycle: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The pattern with ``n_units`` on RBL_R whose comparator crosses in ramp cycle ``cycle``."""
    return pattern(n_units + P_MINUS_N_AT_CYCLE0 - 4 * int(cycle), n_units)


#: The base pattern: 300 units on RBL_L, 204 on RBL_R; it fires in ramp cycle 9 at a common mode
#: of ~0.29 V, inside the range of the fitting conversions' in-range decisions (0.24–0.33 V)
BASE_N_UNITS, BASE_CYCLE = 204, 9
INPUTS, KEYS = pattern_for(BASE_N_UNITS, BASE_CYCLE)
#: The grid of the nominal threshold: decision cycles (codes 30 … 2) and RBL_R units (common
#: modes at the decision ≈ 0.33, 0.29, 0.25 V: the in-range decisions' span)
GRID_CYCLES = (2, 5, 9, 16, 23, 30)
GRID_N_UNITS = (130, 204, 275)
#: Devices whose shift is measured (the first of each offset-dominant mirror pair), each shifted by
#: ±N_SIGMA of its Pelgrom σ, all decided in BASE_CYCLE (the bisection's current compensates)
DEVICES = ("mip", "mlp", "mnp")
N_SIGMA = 2.0
#: A first guess of each device's in-column sensitivity (V/V; the earlier measurement), only to
#: place the bisection's first bracket (a wrong guess costs a wider bracket, not a wrong result)
GUESS_SENSITIVITY = {"mip": 1.2, "mlp": -0.22, "mnp": -0.10}
GUESS_NOMINAL_V = -0.2e-3
#: The variable charge: an ideal current pulse on RBL_R for T_SHIFT_S during the MAC phase.
T_SHIFT_S = 10e-9
#: About how much V_R − V_L at the sense instant falls per ampere of that pulse (60 nA: ~3.5 mV)
DV_PER_A = 3.5e-3 / 60e-9
#: Half-width of the first bracket about the guessed threshold (V), and how often it may widen
BRACKET_HALF_V = 0.4e-3
MAX_WIDEN = 6
#: Bisection resolution of the threshold (V): a tenth of the model's 0.1 mV-scale effects.
TOL_V = 10e-6
#: At most this many bisection steps: late in the ramp the sensed V_R − V_L carries a few µV of
#: numerical noise between runs, so the bracket may not shrink below TOL_V (the bracket's width is
#: reported with the threshold either way)
MAX_BISECTION_STEPS = 14


def _trial(sa_dvt_v: dict, i_shift_a: float, n_cycles: int, corner, supplies, design,
           inputs=INPUTS, keys=KEYS):
    """One conversion to the read of ramp cycle ``n_cycles``: (firing cycle or None,
    V_R − V_L and the common mode at each sense instant 1…n_cycles)."""
    from topkima.circuits.spice import simulate
    conv = ColumnConversion(tuple(keys), tuple(inputs), N_CAL, T_CAL_UNITS, T_RAMP_UNITS)
    extra = (f"ishift rbl_r0 0 PULSE(0 {num(i_shift_a, 'shift current')} {num(T_MAC0_S + 1e-9)} 0.1n 0.1n "
             f"{num(T_SHIFT_S)} 1)",)
    text = column_netlist(conv, corner=corner, supplies=supplies, draws=ColumnDraws(sa_dvt_v=dict(sa_dvt_v)),
                          with_sa=True, extra=extra, design=design, tstop_s=sa_sample_time_s(n_cycles) + 0.1e-9)
    res = simulate(text, COLUMN_BLOCK)
    v_r, v_l = res.v("rbl_r0"), res.v("rbl_l0")
    t_sense = [sense_instant_s(j) for j in range(1, n_cycles + 1)]
    diff = np.interp(t_sense, res.time, v_r - v_l)
    cm = np.interp(t_sense, res.time, 0.5 * (v_r + v_l))
    return firing_cycle(res.time, res.v("sa_outp"), supplies.v_sa_v), diff, cm


def measure_column_threshold(corner_name: str, supplies: dict, sa_dvt_v: dict | None = None,
                             design_fields: dict | None = None, *, n_units: int = BASE_N_UNITS,
                             cycle: int = BASE_CYCLE, guess_v: float = GUESS_NOMINAL_V) -> dict:
    """The in-column threshold (V) in ramp cycle ``cycle`` of a sense amplifier with local shifts
    ``sa_dvt_v`` (V, by device name; the corner's shift is added by the testbench), on the pattern
    with ``n_units`` on RBL_R that crosses near that cycle, by bisection (module docstring)."""
    from topkima.circuits.column_measure import corner_and_supplies
    from topkima.circuits.design import design_with
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    shifts = checked_delvto(sa_dvt_v)
    j = int(cycle)
    if not 1 <= j <= N_RAMP_STEPS:
        raise ValueError(f"in-column threshold: cycle must be in 1..{N_RAMP_STEPS}, got {cycle!r}")
    inputs, keys = pattern_for(n_units, j)
    runs = {}

    def run(i_a: float):
        f, d, cm = _trial(shifts, i_a, j, corner, sup, design, inputs, keys)
        runs[i_a] = (f is not None and f <= j, float(d[j - 1]), float(cm[j - 1]), f)
        return runs[i_a]

    _, d0, _, _ = run(0.0)
    i_mid, half = (d0 - guess_v) / DV_PER_A, BRACKET_HALF_V / DV_PER_A
    lo, hi = i_mid - half, i_mid + half   # lo: fires by cycle j; hi: not yet
    for _ in range(MAX_WIDEN):
        if run(lo)[0]:
            break
        hi, lo, half = lo, lo - 2 * half, 2 * half
    else:
        raise RuntimeError(f"in-column threshold: no charge shift makes the latch fire by cycle {j} (sa_dvt_v {shifts})")
    for _ in range(MAX_WIDEN):
        if not (runs.get(hi) or run(hi))[0]:
            break
        lo, hi, half = hi, hi + 2 * half, 2 * half
    else:
        raise RuntimeError(f"in-column threshold: the latch fires by cycle {j} for every charge shift (sa_dvt_v {shifts})")
    for _ in range(MAX_BISECTION_STEPS):
        if abs(runs[lo][1] - runs[hi][1]) <= TOL_V:
            break
        mid = 0.5 * (lo + hi)
        if run(mid)[0]:
            lo = mid
        else:
            hi = mid
    if runs[lo][3] != j:
        raise RuntimeError(f"in-column threshold: at the flip the latch fired in cycle {runs[lo][3]}, not {j}")
    return {"sa_dvt_v": shifts, "firing_cycle": j, "n_units_r": int(n_units),
            "threshold_v": 0.5 * (runs[lo][1] + runs[hi][1]),
            "bracket_v": [runs[lo][1], runs[hi][1]],
            "i_shift_bracket_a": [float(lo), float(hi)],
            "vcm_v": runs[lo][2], "n_transients": len(runs)}


def cases(design=None) -> list[tuple[str, dict, dict]]:
    """(label, local shifts, where: n_units and cycle) of the measured instances: the nominal latch
    on the grid, then each device ±N_SIGMA·σ (its Pelgrom σ in ``design``, None: the 65 nm preset)
    in the base pattern's cycle."""
    from topkima.circuits.comparator import DEVICE_BY_NAME, device_sigma_vth_v
    from topkima.circuits.design import default_design
    base = {"n_units": BASE_N_UNITS, "cycle": BASE_CYCLE}
    out = [("none", {}, base)]
    out += [(f"grid/n{n}_j{j}", {}, {"n_units": n, "cycle": j}) for n in GRID_N_UNITS for j in GRID_CYCLES
            if (n, j) != (BASE_N_UNITS, BASE_CYCLE)]
    for dev in DEVICES:
        dvt = round(N_SIGMA * device_sigma_vth_v(DEVICE_BY_NAME[dev], design or default_design()), 6)
        out += [(f"{dev}{s}", {dev: sign * dvt}, dict(base, guess_v=GUESS_NOMINAL_V + GUESS_SENSITIVITY[dev] * sign * dvt))
                for s, sign in (("+", 1), ("-", -1))]
    return out


def plan(settings) -> list[Job]:
    """One job per instance of :func:`cases` (column and sense-amplifier netlists)."""
    return threshold_jobs(BLOCK, settings, cases(settings.design))


def threshold_jobs(block: str, settings, instances) -> list[Job]:
    """One :func:`measure_column_threshold` job of ``block`` per (label, sense-amplifier shifts, where)
    instance, on the column and sense-amplifier netlists at ``settings``' corner, supplies and design."""
    from topkima.circuits.column import NETLISTS as COLUMN_NETLISTS
    from topkima.circuits.design import COLUMN_FIELDS
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(),
            "design_fields": settings.design.values(COLUMN_FIELDS)}
    return [Job(block, f"{block}/{label}", "topkima.circuits.comparator_column:measure_column_threshold",
                dict(base, sa_dvt_v=shifts, **where), COLUMN_NETLISTS + SA_NETLISTS)
            for label, shifts, where in instances]
