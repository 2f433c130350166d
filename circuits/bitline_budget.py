"""A design's bitline voltage budget: volts per PWM unit, the ramp LSB in volts, and the level the
bitline reaches at the edges of the largest ADC window the design allows.

Why: the ramp ADC's LSB in volts is what the comparator's offset and noise are measured against.
A taller bitline (more replica rows, wider drains) holds more capacitance, so the same cell
current moves fewer volts per unit (``topkima-65nm-ramp128-cells4x``: 0.29 mV per 0.5 ns unit on
448 rows, against 0.57 mV on the preset's 256), and a design that restores the volts must not
push the bitline out of the comparator's range. This bench answers both on the column testbench
(:func:`topkima.circuits.column_measure.measure_discharge`, in this process, at the design's own
clocks and rows):

* ``v_unit_top_v``: the discharge curve's slope over its first 8–40 units (16 MAC cells held on),
  near the precharge level, where the window's top sits;
* ``lsb_v``: the charge one ramp cell's ``adc.t_ramp_units`` pulse takes from the bitline near the
  top (the pulse on RBL_R, read before and after as the calibration does);
* ``v_at_window_top_v``: the curve at the largest window top the design allows,
  ``n_cal_rows × max_cal_units`` units (every calibration cell, the longest calibration pulse):
  the level of RBL_R after the calibration phase with no MAC discharge on it;
* ``v_at_full_ramp_v``: the curve at ``n_ramp_rows × max_ramp_units`` units, the discharge of
  RBL_L after the longest ramp with no MAC discharge;
* ``v_cm_min_v``: the lowest common mode at which the comparator's offset is characterised
  (:data:`topkima.circuits.comparator_bench.OFFSET_VCM_V`); both levels above should stay above it.

A MAC discharge adds to both bitlines on top of these, so they are the window's own budget, not a
bound over every input. The discharge curve ignores the calibration and ramp rows' own wordline
coupling, which the calibration's ramp benches measure.
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import timing as tm
from topkima.circuits.comparator_bench import OFFSET_VCM_V
from topkima.circuits.corners import Supplies
from topkima.circuits.design import COLUMN_FIELDS, Design

#: MAC cells held on to trace the curve (as the calibration's quick plan, circuits/column_fit.py)
N_CELLS_ON = 16
#: Units of discharge the curve is traced to (beyond any window a 128-step design allows: 128 × 6 + 128 × 4)
CURVE_UNITS = 1600
#: The slope is fitted over these units near the top: clear of the release's first unit, inside the linear part
SLOPE_UNITS = (8.0, 40.0)


def bitline_budget(design: Design, corner_name: str = "tt") -> dict:
    """The budget of ``design`` at ``corner_name`` (one ngspice transient, ~0.3 s for 448 rows); JSON-able."""
    from topkima.circuits.column_measure import measure_discharge
    clocks = tm.of_design(design)
    pulse_units = int(design.adc.t_ramp_units)
    with tm.using(clocks):
        r = measure_discharge(corner_name, Supplies.from_design(design).as_dict(), N_CELLS_ON, [pulse_units],
                              clocks.t_mac0_s + CURVE_UNITS * clocks.t_unit_s / N_CELLS_ON + 10e-9,
                              design_fields=design.values(COLUMN_FIELDS))
    units, v = np.asarray(r["units"]), np.asarray(r["v_rbl_v"])
    near_top = (units > SLOPE_UNITS[0]) & (units < SLOPE_UNITS[1])
    g = design.geometry
    top_units = g.n_cal_rows * clocks.max_cal_units
    ramp_units = g.n_ramp_rows * clocks.max_ramp_units
    if max(top_units, ramp_units) > units.max():
        raise ValueError(f"the traced curve ends at {units.max():.0f} units, short of the design's window "
                         f"({top_units} / {ramp_units} units): raise CURVE_UNITS")
    return {
        "design": design.name, "corner": corner_name, "n_rows": g.n_ramp_rows + g.n_cal_rows + g.n_mac_rows,
        "v_precharged_v": float(r["v_released_v"]),
        "v_unit_top_v": -float(np.polyfit(units[near_top], v[near_top], 1)[0]),
        "ramp_pulse_units": pulse_units,
        "lsb_v": float(r["v_before_v"][0] - r["v_after_v"][0]),
        "window_top_units": int(top_units), "v_at_window_top_v": float(np.interp(top_units, units, v)),
        "full_ramp_units": int(ramp_units), "v_at_full_ramp_v": float(np.interp(ramp_units, units, v)),
        "v_cm_min_v": float(min(OFFSET_VCM_V)),
    }
