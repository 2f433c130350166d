"""`topkima calibrate-droop`: measure the read bitlines' droop against their level in ngspice and add
it to an existing artefact as ``column.bitline_droop`` (with its own provenance).

Physics: the idle read stacks on a bitline leak a subthreshold current that grows with their drain
voltage, the bitline level (drain-induced barrier lowering): in the column the droop is 3.2× faster
at 0.5 V than at 0.18 V. The behavioural model took one rate, the ``.op`` stack currents at 0.45 V
(:func:`topkima.behavioral.params.params_from_calibration`); with this field it scales that rate by
the measured rate at the bitline's level relative to the rate at 0.45 V
(:mod:`topkima.behavioral.macro.bitline`). Fitted here: each idle bitline's fall between successive
sense instants in the discharge curve's units per PWM unit (the curve's own units: leakage is then
in the model's units), averaged per bitline and run, at the run's mean level.

A separate step from ``topkima calibrate`` (like ``calibrate-in-column``): an artefact without the
field is read as before. Eight column transients; they run through the resumable job cache.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.calibration.artefact import ArtefactError, load_calibration
from topkima.calibration.artefact_extension import add_measured_section
from topkima.calibration.in_column import settings_of_artefact

#: the level at which the relative rate is 1: the model's leakage is the ``.op`` currents there
#: (``params_from_calibration(v_leak_v=0.45)``)
V_REF_V = 0.45
#: wall-clock limit per job (s): one transient took 0.3 s on an idle core
TIMEOUT_S = 600.0


def fit_droop(results: list[dict], curve_units, curve_v, t_unit_s: float, v_ref_v: float = V_REF_V) -> dict:
    """The artefact field from the droop runs: per bitline and run, the mean level and the leakage
    rate (curve units per PWM unit: the fall in curve units over the sense instants / their time),
    sorted by level, and the rate relative to the rate at ``v_ref_v`` (linear between the points)."""
    u, v = np.asarray(curve_units, float), np.asarray(curve_v, float)
    levels, rates = [], []
    for r in results:
        t_units = np.asarray(r["t_after_mac_start_s"], float) / t_unit_s
        for side in ("l", "r"):
            volts = np.asarray(r[f"v_rbl_{side}_v"], float)
            units = np.interp(-volts, -v, u)          # the curve inverted: units at each instant
            levels.append(float(volts.mean()))
            rates.append(float((units[-1] - units[0]) / (t_units[-1] - t_units[0])))
    order = np.argsort(levels)
    levels, rates = np.asarray(levels)[order], np.asarray(rates)[order]
    if np.any(np.diff(levels) <= 0) or np.any(rates <= 0):
        raise ArtefactError("the droop runs' levels must differ and their rates be positive; check the runs")
    if not levels[0] <= v_ref_v <= levels[-1]:
        raise ArtefactError(f"the droop runs span {levels[0]:.3f}–{levels[-1]:.3f} V, not the reference level "
                            f"{v_ref_v} V")
    rate_ref = float(np.interp(v_ref_v, levels, rates))
    return {"v_rbl_v": levels.tolist(), "rate_units_per_unit": rates.tolist(),
            "rate_rel": (rates / rate_ref).tolist(), "v_ref_v": v_ref_v,
            "rate_at_v_ref_units_per_unit": rate_ref}


def artefact_section(cal, results: dict) -> dict:
    """``column.bitline_droop`` from the jobs' results (by label)."""
    from topkima.circuits import bitline_droop as bd
    runs = [results[k] for k in sorted(results)]
    col = cal.column
    fit = fit_droop(runs, col["discharge_curve"]["units"], col["discharge_curve"]["v_rbl_v"],
                    float(col["timing"]["t_unit_s"]))
    return {
        "method": "full column testbench without the sense amplifier (circuits/bitline_droop.py): the MAC phase "
                  "pre-discharges RBL_L and RBL_R to chosen levels, then neither the calibration nor the ramp pulses; "
                  "both bitlines idle with a conversion's idle stacks through the ramp's duration. Rate = fall in "
                  "discharge-curve units between the first and last sense instant / their time (PWM units)",
        "pre_units": [list(p) for p in bd.PRE_UNITS],
        **fit,
        "note": "the model scales its idle-stack leakage (the .op currents at v_ref_v) by rate_rel at the "
                "bitline's level (linear between the points, flat beyond them)",
        "runs": [dict(r, label=k) for k, r in sorted(results.items())],
    }


def add_bitline_droop(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                      cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S, command: str = "") -> dict:
    """Run the droop jobs for ``artefact`` (None: the committed one), add their field to its column
    section and write it to ``out`` (None: in place); returns the field."""
    from topkima.circuits import bitline_droop as bd
    from topkima.circuits import technology, timing
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    if technology.payload(settings.design, settings.corner_name) is not None or timing.payload(settings.design) is not None:
        raise ArtefactError(f"{cal.path}: topkima calibrate-droop measures designs with the 65 nm technology and "
                            f"clocks only; this design ({settings.design.name}) differs: its artefact is used "
                            "without the droop field (constant leakage)")
    return add_measured_section(cal, settings, bd.plan(settings), lambda r: artefact_section(cal, r),
                                "column", "bitline_droop", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)
