"""The replica cells' pulsed charge against their devices' threshold shifts (the calibration phase).

Why: the behavioural model scales each replica cell's charge by the read stack's *DC* current
factor, ln(I/I₀) = a·Δa + b·Δs + c·Δa² + d·Δs² + e·Δa·Δs (Δa, Δs: access and storage threshold
shifts), fitted to Monte Carlo DC currents (:func:`topkima.circuits.column_fit.fit_cell_current_mismatch`).
A replica cell is pulsed for a few PWM units with 0.2 ns wordline edges, while the bitline
falls: during the edges the access device is barely on and its threshold weighs more, and the
curvature of the charge in the shifts need not be the DC current's. On the error-budget golden
set the calibration cells' mismatch added an error with a *mean* of +0.05 mV (the model's
calibration discharge short on average), which a first-order sensitivity cannot give.

What is simulated: the column testbench (:func:`topkima.circuits.column.column_netlist`, no
sense amplifier: its reset-state load; no ramp), the in-column base pattern's MAC discharge, the
32 calibration cells pulsed together for ``t_cal_units``; V(RBL_R) is read before the pulses
(at the calibration clock's start) and at the first ramp cycle's sense instant, where the
comparator first reads it. One run per case of :func:`cases`:

* ``none``: every cell nominal (the reference charge Q₀);
* ``a±`` / ``s±``: every cell's access (storage) device shifted by ±σ: the first-order terms;
* ``bal/a``, ``bal/s``, ``bal/as``, ``bal/a-s``: half the cells shifted by +2σ, half by −2σ in
  access, storage or both (same or opposite signs): the total stays near Q₀ (the bitline follows
  its nominal path), so these measure the curvature;
* ``mc/<i>``: every cell drawn from Pelgrom's σ with its own seed stream (:data:`MC_SEED`):
  the independent check of a fit made from the cases above, never fitted to;
* ``w<w>/none``, ``w<w>/a±``, ``w<w>/s±``: the first-order runs again at the other pulse widths
  :data:`EDGE_WIDTHS`: how a pulse's sensitivity beyond the DC current's depends on its width. A
  charge taken during the wordline's edges, the same for every width, weighs 1/w of the pulse: it
  is what a MAC read stack (pulsed for 1 … 124 units) takes beyond its DC current factor.
"""
from __future__ import annotations

import numpy as np

from topkima.circuits.jobs import Job

BLOCK = "replica_pulse"
#: Monte Carlo draws of the 32 cells for the check (never fitted to), from their own seed stream
N_MC = 16
MC_SEED = 170_002
#: The structured cases: (label, access shift, storage shift) in units of σ; a "bal/" case gives
#: the first half of the cells (+) and the second half (−) of these shifts
STRUCTURED = (("none", 0, 0), ("a+", 1, 0), ("a-", -1, 0), ("s+", 0, 1), ("s-", 0, -1),
              ("bal/a", 2, 0), ("bal/s", 0, 2), ("bal/as", 2, 2), ("bal/a-s", 2, -2))
#: Further calibration pulse widths (PWM units) of the first-order runs (the design's own is the main set's)
EDGE_WIDTHS = (1, 2, 6)
FIRST_ORDER = STRUCTURED[:5]


def cell_shifts(label: str, da_sigma: float, ds_sigma: float, sigma_v: float, n_cal: int) -> np.ndarray:
    """(n_cal, 2) access/storage threshold shifts (V) of a structured case."""
    shifts = np.tile([da_sigma * sigma_v, ds_sigma * sigma_v], (n_cal, 1))
    if label.startswith("bal/"):
        shifts[n_cal // 2:] *= -1
    return shifts


def cases(design=None) -> list[tuple[str, np.ndarray, int | None]]:
    """(label, (n_cal_rows, 2) shifts in V, pulse width in PWM units or None: the design's) of every
    run: the structured cases, the Monte Carlo, then the first-order runs at the other widths."""
    from topkima.circuits.column import ColumnDraws, Rows
    from topkima.circuits.design import default_design
    from topkima.circuits.mismatch import a_vt_of, sigma_vth_v
    design = design or default_design()
    rp, n_cal = design.sizes.read_port, Rows.of(design).n_cal
    sigma = sigma_vth_v("n", rp.w_m, rp.l_m, a_vt_of(design, "n"))
    out = [(label, cell_shifts(label, a, s, sigma, n_cal), None) for label, a, s in STRUCTURED]
    rng = np.random.default_rng(MC_SEED)
    for i in range(N_MC):
        out.append((f"mc/{i:02d}", ColumnDraws.draw(rng, design=design).cal_dvt_v, None))
    for w in EDGE_WIDTHS:
        out += [(f"w{w}/{label}", cell_shifts(label, a, s, sigma, n_cal), w) for label, a, s in FIRST_ORDER]
    return out


def measure_calibration_pulse(corner_name: str, supplies: dict, cal_dvt_v: list, design_fields: dict | None = None,
                              t_cal_units: int = 4) -> dict:
    """V(RBL_R) before the calibration pulses and at ramp cycle 1's sense instant, with the
    calibration cells' shifts ``cal_dvt_v`` ((n_cal_rows, 2) V; every other device nominal)."""
    from topkima.circuits import timing as tm
    from topkima.circuits.column import BLOCK as COLUMN_BLOCK
    from topkima.circuits.column import ColumnConversion, ColumnDraws, column_netlist
    from topkima.circuits.column_measure import corner_and_supplies
    from topkima.circuits.comparator_column import INPUTS, KEYS
    from topkima.circuits.design import design_with
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    zeros = ColumnDraws.zeros(design)
    cal = np.asarray(cal_dvt_v, dtype=float)
    if cal.shape != zeros.cal_dvt_v.shape or not np.all(np.isfinite(cal)) or np.any(np.abs(cal) > 0.5):
        raise ValueError(f"cal_dvt_v must be {zeros.cal_dvt_v.shape} finite threshold shifts within ±0.5 V, "
                         f"got shape {cal.shape}")
    draws = ColumnDraws(zeros.mac_dvt_v, cal, zeros.ramp_dvt_v, {})
    conv = ColumnConversion(KEYS, INPUTS, n_cal=cal.shape[0], t_cal_units=int(t_cal_units))
    ck = tm.active()
    t_after = ck.sense_instant_s(1)
    text = column_netlist(conv, corner=corner, supplies=sup, draws=draws, with_sa=False, ramp=False,
                          design=design, tstop_s=t_after + 0.2e-9, save=("rbl_r0",))
    res = simulate(text, COLUMN_BLOCK)
    v_before, v_after = np.interp([ck.t_cal0_s, t_after], res.time, res.v("rbl_r0"))
    return {"v_before_v": float(v_before), "v_after_v": float(v_after), "t_cal_units": int(t_cal_units),
            "n_cal": int(cal.shape[0]), "cal_dvt_v": cal.tolist()}


def plan(settings) -> list[Job]:
    """One job per case (column netlist), at its pulse width (None: the design's calibration pulse)."""
    from topkima.circuits.column import NETLISTS as COLUMN_NETLISTS
    from topkima.circuits.design import COLUMN_FIELDS
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(),
            "design_fields": settings.design.values(COLUMN_FIELDS)}
    own = int(settings.design.adc.t_cal_units)
    return [Job(BLOCK, f"{BLOCK}/{label}", "topkima.circuits.replica_pulse:measure_calibration_pulse",
                dict(base, cal_dvt_v=shifts.tolist(), t_cal_units=own if width is None else int(width)), COLUMN_NETLISTS)
            for label, shifts, width in cases(settings.design)]
