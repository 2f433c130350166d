"""The read bitlines' own droop against their level: the idle read stacks' leakage in the column.

Why: the behavioural model let a column's idle stacks leak at one rate, their ``.op`` current at
V(RBL) = 0.45 V (:func:`topkima.behavioral.params.params_from_calibration`). A stack's
subthreshold current grows with its drain voltage (drain-induced barrier lowering): the
``.op`` table gives ×1.3 at 0.5 V and ×0.6 at 0.3 V. Over a ramp that starts at 0.5 V the early
steps therefore also carry more leakage than the late ones, and SPICE's ramp steps shrink by
3 % where the model's, whose leakage was constant, shrank by 1 % (the ramp's bow,
docs/behavioral-model.md).

What is simulated: the full column testbench (:func:`topkima.circuits.column.column_netlist`:
every MAC, calibration and ramp row with its wire, the sense amplifier's reset input load), the MAC
phase pre-discharging RBL_L and RBL_R to chosen levels with key ±4 elements, then neither the
calibration nor the ramp pulsing: both bitlines idle through the conversion's ramp duration with
a conversion's idle stacks (calibration rows storing 1 on RBL_R, ramp rows storing 1 on RBL_L).
Measured: both bitlines at the sense instants of cycles 0 … n; their fall between instants, in
the discharge curve's units, is the leakage rate at that level
(:mod:`topkima.calibration.bitline_droop` fits it).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import timing as tm
from topkima.circuits.column_measure import corner_and_supplies
from topkima.circuits.design import COLUMN_FIELDS, design_with
from topkima.circuits.jobs import Job

BLOCK = "bitline_droop"
NETLISTS = col.NETLISTS
#: Pre-discharge of (RBL_L, RBL_R) per run, ideal units [ours: the levels a conversion's bitlines
#: sweep at tt and ss, 0.5 V down to ≈0.2 V (tt) or ≈0.3 V (ss, weaker cells), in steps of ≈28 mV (tt)]
PRE_UNITS = ((0, 52), (100, 152), (200, 252), (300, 352), (400, 452), (500, 552), (700, 752), (900, 952))
#: the key level whose x4 pair alone stores a 1: 4 units per input step
_KEY = 4


def pre_discharge_vectors(units_l: int, units_r: int, n_elements: int = col.N_ELEMENTS) -> tuple[list[int], list[int]]:
    """(keys, inputs) of ``n_elements`` elements discharging ``units_l`` ideal units on RBL_L and
    ``units_r`` on RBL_R (key +4 / −4 elements, positive inputs), or a ValueError when they do not fit."""
    keys, inputs = [0] * n_elements, [0] * n_elements
    e = 0
    for units, sign in ((int(units_l), 1), (int(units_r), -1)):
        if units < 0 or units % _KEY:
            raise ValueError(f"pre-discharge units must be non-negative multiples of {_KEY}, got {units}")
        left = units
        while left > 0:
            if e >= n_elements:
                raise ValueError(f"pre-discharge ({units_l}, {units_r}) units do not fit {n_elements} key elements "
                                 f"({_KEY * col.Q_MAX} units each)")
            keys[e], inputs[e] = sign * _KEY, min(col.Q_MAX, left // _KEY)
            left -= _KEY * inputs[e]
            e += 1
    return keys, inputs


def measure_droop(corner_name: str, supplies: dict, pre_units_l: int, pre_units_r: int,
                  design_fields: dict | None = None) -> dict:
    """Both bitlines at the sense instants of cycles 0 … n with the calibration and the ramp idle."""
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    keys, inputs = pre_discharge_vectors(pre_units_l, pre_units_r, design.geometry.n_elements)
    rows = col.Rows.of(design)
    conv = col.ColumnConversion(tuple(keys), tuple(inputs), rows.n_cal, 4, 4, rows.n_cal, design.geometry.n_elements)
    text = col.column_netlist(conv, corner=corner, supplies=sup, with_sa=False, ramp=False, calibration=False,
                              idle_through_ramp=True, design=design)
    res = simulate(text, BLOCK)
    ck = tm.active()
    t_sense = [ck.sense_instant_s(j) for j in range(ck.n_ramp_steps + 1)]
    return {"pre_units_l": int(pre_units_l), "pre_units_r": int(pre_units_r),
            "t_after_mac_start_s": [t - ck.t_mac0_s for t in t_sense],
            "v_rbl_l_v": [float(np.interp(t, res.time, res.v("rbl_l0"))) for t in t_sense],
            "v_rbl_r_v": [float(np.interp(t, res.time, res.v("rbl_r0"))) for t in t_sense],
            # each key digit stores its 1 in stacks on both bitlines (the model's leakage counts Σ|digit|)
            "mac_stored_ones": int(sum(bin(abs(k)).count("1") for k in keys))}


def plan(settings) -> list[Job]:
    """One job per pre-discharge level pair (:data:`PRE_UNITS`), nominal devices."""
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(),
            "design_fields": settings.design.values(COLUMN_FIELDS)}
    return [Job(BLOCK, f"{BLOCK}/l{pl:03d}_r{pr:03d}", "topkima.circuits.bitline_droop:measure_droop",
                dict(base, pre_units_l=pl, pre_units_r=pr), NETLISTS)
            for pl, pr in PRE_UNITS]
