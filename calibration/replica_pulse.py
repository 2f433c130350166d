"""`topkima calibrate-replica-pulse`: the replica cells' pulsed charge against their threshold shifts,
measured in ngspice (:mod:`topkima.circuits.replica_pulse`) and added to an artefact as
``column.replica_pulse`` (with its own provenance).

The fit: each replica cell's charge relative to a nominal cell's,
ln(Q/Q₀) = α·Δa + β·Δs + γ·Δa² + δ·Δs² + ε·Δa·Δs (Δa, Δs: access and storage threshold shifts, V),
the same form as the DC current fit (``column.mismatch``), by least squares over the structured
runs: the whole calibration phase's charge (32 cells pulsed together, read at ramp cycle 1's sense
instant, in the discharge curve's units) against the mean of its cells' factors. The Monte Carlo
runs are not fitted: they check the fit (and the DC factor) on independent draws. The model
(:meth:`topkima.behavioral.params.MacroParams.replica_factor`) scales the calibration and ramp
cells by this fit instead of the DC current's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.calibration.artefact import load_calibration
from topkima.calibration.artefact_extension import add_measured_section
from topkima.calibration.in_column import settings_of_artefact

#: wall-clock limit per job (s): one column transient to ramp cycle 1 took ~1 s on an idle core
TIMEOUT_S = 600.0
#: the fit's terms, in the order of the DC fit (column.mismatch.log_ratio_fit_per_v)
TERMS = ("da", "ds", "da2", "ds2", "dads")


def add_replica_pulse(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                      cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S, command: str = "") -> dict:
    """Run the replica-pulse jobs for ``artefact`` (None: the committed one), add their section to it
    and write it to ``out`` (None: in place); returns the section."""
    from topkima.circuits import replica_pulse
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    return add_measured_section(cal, settings, replica_pulse.plan(settings), lambda r: artefact_section(cal, r),
                                "column", "replica_pulse", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)


def log_factor(coef, da, ds) -> np.ndarray:
    """ln(Q/Q₀) of cells with shifts ``da``, ``ds`` (V) under the fit ``coef`` (α, β, γ, δ, ε)."""
    a, b, c, d, e = coef
    return a * da + b * ds + c * da * da + d * ds * ds + e * da * ds


def phase_ratio(coef, shifts: np.ndarray) -> float:
    """The calibration phase's charge relative to nominal: the mean of its cells' factors."""
    shifts = np.asarray(shifts, float)
    return float(np.mean(np.exp(log_factor(coef, shifts[:, 0], shifts[:, 1]))))


def _units_of_v(cal):
    curve = cal.column["discharge_curve"]
    u, v = np.asarray(curve["units"], float), np.asarray(curve["v_rbl_v"], float)
    return lambda x: np.interp(x, v[::-1], u[::-1])


def charge_units(cal, run: dict) -> float:
    """The calibration phase's charge of one run in discharge-curve units."""
    units = _units_of_v(cal)
    return float(units(run["v_after_v"]) - units(run["v_before_v"]))


def fit_replica_pulse(ratios: dict[str, float], shifts: dict[str, np.ndarray], start) -> tuple[np.ndarray, float]:
    """(α, β, γ, δ, ε) by least squares of ln(ratio) over the given runs, and the residual rms (in ln)."""
    from scipy.optimize import least_squares
    labels = sorted(ratios)
    target = np.log([ratios[k] for k in labels])

    def resid(coef):
        return np.log([phase_ratio(coef, shifts[k]) for k in labels]) - target

    sol = least_squares(resid, np.asarray(start, float), x_scale=[10, 10, 100, 100, 100], xtol=1e-12, ftol=1e-14)
    return sol.x, float(np.sqrt(np.mean(sol.fun ** 2)))


def artefact_section(cal, results: dict) -> dict:
    """The ``column.replica_pulse`` field from the jobs' results (by label, :func:`topkima.circuits.replica_pulse.cases`)."""
    from topkima.circuits import replica_pulse as rp
    runs = {key.split("/", 1)[1]: r for key, r in results.items()}
    q0 = charge_units(cal, runs["none"])
    ratio = {k: charge_units(cal, r) / q0 for k, r in runs.items()}
    shifts = {k: np.asarray(r["cal_dvt_v"], float) for k, r in runs.items()}
    structured = {k: ratio[k] for k in ratio if "/" not in k.replace("bal/", "") and k != "none"}
    mm = cal.column["mismatch"]
    dc = _dc_fit(cal)
    coef, resid = fit_replica_pulse(structured, shifts, dc)
    v_per_unit = (runs["none"]["v_before_v"] - runs["none"]["v_after_v"]) / q0
    check = {}
    mc = sorted(k for k in ratio if k.startswith("mc/"))
    for name, c in (("dc_current_fit", dc), ("pulse_fit", coef)):
        err_v = np.array([(phase_ratio(c, shifts[k]) - ratio[k]) * q0 * v_per_unit for k in mc])
        check[name] = {"mean_error_v": float(err_v.mean()), "rms_error_v": float(np.sqrt(np.mean(err_v ** 2)))}
    edge = edge_per_pulse(cal, runs, dc, float(mm["sigma_vth_per_device_v"]))
    return {
        "edge_per_pulse": edge,
        "method": "column testbench without the sense amplifier (its reset load), the in-column base pattern's MAC "
                  "discharge, the calibration cells pulsed together (circuits/replica_pulse.py); charge = discharge-curve "
                  "units between V(RBL_R) at the calibration clock's start and at ramp cycle 1's sense instant; "
                  "ln(Q/Q0) = a*da + b*ds + c*da^2 + d*ds^2 + e*da*ds per cell, least squares over the structured runs "
                  "(the phase's charge = the mean of its cells' factors); the Monte Carlo runs only check it",
        "terms": list(TERMS), "log_ratio_fit": [float(x) for x in coef], "fit_residual_rms_ln": resid,
        "dc_current_fit_at_model_v": [float(x) for x in dc], "t_pulse_units": int(runs["none"]["t_cal_units"]),
        "n_cells": int(runs["none"]["n_cal"]), "q0_units": q0, "sigma_vth_v": float(mm["sigma_vth_per_device_v"]),
        "mc_seed": rp.MC_SEED, "mc_check": dict(check, n=len(mc), note="model - SPICE of the calibration phase's "
                                                 "drop on RBL_R (V), independent Monte Carlo draws, never fitted"),
        "runs": [dict(r, label=k, charge_units=charge_units(cal, r)) for k, r in sorted(runs.items())],
    }


def _dc_fit(cal) -> np.ndarray:
    """The DC current fit the model uses (at 0.35 V, :func:`topkima.behavioral.params.params_from_calibration`)."""
    mm = cal.column["mismatch"]
    fits, v = np.asarray(mm["log_ratio_fit_per_v"], float), np.asarray(mm["v_rbl_v"], float)
    return np.array([np.interp(0.35, v[::-1], fits[::-1, i]) for i in range(fits.shape[1])])


def edge_per_pulse(cal, runs: dict, dc, sigma_v: float) -> dict:
    """What a pulse takes beyond its DC current factor, per V of each device's shift, against its width.

    At each width w (the ``w<w>/`` runs and the main set's own width) the first-order runs give the
    phase charge's sensitivities d ln Q / dΔa, d ln Q / dΔs; times a cell's nominal charge q(w) and
    less the DC fit's (a, b), that is the charge a cell takes beyond its DC factor per V:
    E(w) = (d ln Q/dΔ − a)·q(w) units/V. A charge taken during the wordline's edges is the same for
    every width; the DC fit's own error at the bench's bitline level grows with q(w). Least squares
    E(w) = E₀ + κ·q(w): the model adds E₀ per pulse of a MAC read stack storing 1."""
    n_cells = int(runs["none"]["n_cal"])
    widths = sorted({int(k.split("/")[0][1:]) for k in runs if k.startswith("w")} | {int(runs["none"]["t_cal_units"])})
    rows = []
    for w in widths:
        pre = "" if w == int(runs["none"]["t_cal_units"]) else f"w{w}/"
        q = {k: charge_units(cal, runs[pre + k]) for k in ("none", "a+", "a-", "s+", "s-")}
        q_cell = q["none"] / n_cells
        s_a = float(np.log(q["a+"] / q["a-"]) / (2 * sigma_v))
        s_s = float(np.log(q["s+"] / q["s-"]) / (2 * sigma_v))
        rows.append({"width_units": w, "q_cell_units": q_cell, "dlnq_d_access_per_v": s_a, "dlnq_d_storage_per_v": s_s,
                     "e_access_units_per_v": (s_a - dc[0]) * q_cell, "e_storage_units_per_v": (s_s - dc[1]) * q_cell})
    qc = np.array([r["q_cell_units"] for r in rows])
    basis = np.column_stack([np.ones_like(qc), qc])
    out = {"widths": rows, "model": "E(w) = e0 + kappa * q_cell(w), least squares over the widths; the model "
                                    "adds e0_access * da + e0_storage * ds units per pulse of a MAC stack storing 1"}
    for dev in ("access", "storage"):
        e = np.array([r[f"e_{dev}_units_per_v"] for r in rows])
        (e0, kappa), *_ = np.linalg.lstsq(basis, e, rcond=None)
        out[f"e0_{dev}_units_per_v"], out[f"kappa_{dev}_per_v"] = float(e0), float(kappa)
        out[f"residual_{dev}_units_per_v"] = float(np.sqrt(np.mean((e - basis @ [e0, kappa]) ** 2)))
    return out
