"""The comparator's decision threshold measured inside the column (its in-column threshold).

Why: the behavioural model decides with the comparator's *ideal-source* offset (the linear
model of :mod:`topkima.circuits.comparator_fit`). In the column the StrongARM senses two
floating read bitlines that it kicks when it is clocked, after a history of "not fired"
decisions, with the ramp cell's wordline falling shortly before each clock edge. On the
fitting conversions (``topkima golden --set fit``) SPICE fires where V_R − V_L is a little
*below* the modelled offset; the error follows the latch NMOS pair's mismatch (docs/behavioral-model.md).

What is simulated: the full column testbench (:func:`topkima.circuits.column.column_netlist`,
real sense amplifier) on one fixed input pattern whose comparator fires a few ramp cycles in,
at a bitline common mode inside the conversions' range. A small ideal current pulse during
the MAC phase takes a continuously variable charge from RBL_R; bisection on it finds where
the decision of the first firing cycle j flips to j + 1. The in-column threshold is
V(RBL_R) − V(RBL_L) at the sense instant of cycle j at that flip (the same quantity the
golden files store and the model compares with its offset).

Measured: the nominal latch, and each of the three offset-dominant device pairs' first device
(input pair ``mip``, latch PMOS ``mlp``, latch NMOS ``mnp``; their mirror devices act with the
opposite sign, :data:`~topkima.circuits.comparator_fit.MIRROR_PAIRS`) shifted by ±2 σ. The
model (:mod:`topkima.behavioral.params`) takes from these the threshold's constant shift and its
sensitivities beyond the ideal-source linear model.
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
#: The input pattern [ours]: 20 products of +15 units on RBL_L and 17 of −12 on RBL_R (P = 300,
#: N = 204 units), so the comparator fires in ramp cycle ~9 at a common mode of ~0.29 V: inside
#: the range of the fitting conversions' in-range decisions (0.24–0.33 V), after 8 "not fired" ones.
INPUTS = (5,) * 20 + (4,) * 17 + (0,) * 27
KEYS = (3,) * 20 + (-3,) * 17 + (0,) * 27
#: The ADC window of the conversions (the design's: 32 calibration cells × 4 units, LSB 4 units).
N_CAL, T_CAL_UNITS, T_RAMP_UNITS = 32, 4, 4
#: Devices whose shift is measured (the first of each offset-dominant mirror pair), each shifted by
#: ±N_SIGMA of its Pelgrom σ: large against the bisection's resolution, small enough that the
#: decision stays inside the ramp (20 mV on the input pair, 7 σ, saturates it)
DEVICES = ("mip", "mlp", "mnp")
N_SIGMA = 2.0
#: The variable charge: an ideal current pulse from RBL_R for T_SHIFT_S during the MAC phase;
#: up to I_SHIFT_MAX_A it lowers V_R by ~3.5 mV (> 1 LSB of 2.2 mV, so the decision surely flips).
T_SHIFT_S = 10e-9
I_SHIFT_MAX_A = 60e-9
#: Bisection resolution of the threshold (V): a tenth of the model's 0.2 mV-scale effects.
TOL_V = 20e-6


def _trial(sa_dvt_v: dict, i_shift_a: float, n_cycles: int, corner, supplies, design):
    """One conversion to the read of ramp cycle ``n_cycles``: (firing cycle or None,
    V_R − V_L and the common mode at each sense instant 1…n_cycles)."""
    from topkima.circuits.spice import simulate
    conv = ColumnConversion(KEYS, INPUTS, N_CAL, T_CAL_UNITS, T_RAMP_UNITS)
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
                             design_fields: dict | None = None) -> dict:
    """The in-column threshold (V) of a sense amplifier with local shifts ``sa_dvt_v`` (V, by
    device name; the corner's shift is added by the testbench), by bisection (module docstring)."""
    from topkima.circuits.column_measure import corner_and_supplies
    from topkima.circuits.design import design_with
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    shifts = checked_delvto(sa_dvt_v)
    fc, d_lo, cm_lo = _trial(shifts, 0.0, N_RAMP_STEPS, corner, sup, design)
    if fc is None or fc < 2:
        raise RuntimeError(f"in-column threshold: the comparator fired in cycle {fc}; the pattern must fire "
                           f"inside the ramp (sa_dvt_v {shifts})")
    j = fc
    lo, hi = 0.0, I_SHIFT_MAX_A      # lo: fires in cycle ≤ j; hi: later
    f_hi, d_hi, _ = _trial(shifts, hi, j + 1, corner, sup, design)
    if f_hi is not None and f_hi <= j:
        raise RuntimeError(f"in-column threshold: {I_SHIFT_MAX_A} A for {T_SHIFT_S} s does not move the decision")
    n = 2
    while abs(d_lo[j - 1] - d_hi[j - 1]) > TOL_V:
        mid = 0.5 * (lo + hi)
        f, d, cm = _trial(shifts, mid, j + 1, corner, sup, design)
        n += 1
        if f is not None and f <= j:
            lo, d_lo, cm_lo = mid, d, cm
        else:
            hi, d_hi = mid, d
    return {"sa_dvt_v": shifts, "firing_cycle": int(j),
            "threshold_v": float(0.5 * (d_lo[j - 1] + d_hi[j - 1])),
            "bracket_v": [float(d_lo[j - 1]), float(d_hi[j - 1])],
            "i_shift_bracket_a": [float(lo), float(hi)],
            "vcm_v": float(cm_lo[j - 1]), "n_transients": n}


def cases(design=None) -> list[tuple[str, dict]]:
    """(label, local shifts) of the measured instances: nominal, then each device ±N_SIGMA·σ
    (its Pelgrom σ in ``design``, None: the 65 nm preset)."""
    from topkima.circuits.comparator import DEVICE_BY_NAME, device_sigma_vth_v
    from topkima.circuits.design import default_design
    out = [("none", {})]
    for dev in DEVICES:
        dvt = round(N_SIGMA * device_sigma_vth_v(DEVICE_BY_NAME[dev], design or default_design()), 6)
        out += [(f"{dev}+", {dev: dvt}), (f"{dev}-", {dev: -dvt})]
    return out


def plan(settings) -> list[Job]:
    """One job per instance of :func:`cases` (column and sense-amplifier netlists)."""
    from topkima.circuits.column import NETLISTS as COLUMN_NETLISTS
    from topkima.circuits.design import COLUMN_FIELDS
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(),
            "design_fields": settings.design.values(COLUMN_FIELDS)}
    return [Job(BLOCK, f"{BLOCK}/{label}", "topkima.circuits.comparator_column:measure_column_threshold",
                dict(base, sa_dvt_v=shifts), COLUMN_NETLISTS + SA_NETLISTS) for label, shifts in cases(settings.design)]


def artefact_section(results: dict) -> dict:
    """The ``comparator.in_column`` artefact field from the jobs' results (by label)."""
    nominal = results[f"{BLOCK}/none"]
    sens = {}
    for dev in DEVICES:
        up, down = results[f"{BLOCK}/{dev}+"], results[f"{BLOCK}/{dev}-"]
        sens[dev] = (up["threshold_v"] - down["threshold_v"]) / (up["sa_dvt_v"][dev] - down["sa_dvt_v"][dev])
    return {
        "method": "full column testbench with the sense amplifier (circuits/comparator_column.py): a fixed input "
                  "pattern firing a few ramp cycles in; bisection on a small charge taken from RBL_R during the MAC "
                  "phase; threshold = V(RBL_R) - V(RBL_L) at the sense instant of the firing cycle at the flip",
        "inputs": list(INPUTS), "keys": list(KEYS),
        "vcm_v": float(np.mean([r["vcm_v"] for r in results.values()])),
        "threshold_nominal_v": nominal["threshold_v"],
        "n_sigma": N_SIGMA,
        "sensitivity_v_per_v": sens,
        "mirror_devices": {dev: dict(MIRROR_PAIRS)[dev] for dev in DEVICES},
        "mirror_sign": "the mirror device of each pair acts with the opposite sign",
        "runs": [dict(results[key], label=key.rsplit("/", 1)[1]) for key in sorted(results)],
        "tol_v": TOL_V,
    }
