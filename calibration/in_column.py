"""`topkima calibrate-in-column`: measure the comparator's in-column threshold in ngspice and add it
to an existing artefact as ``comparator.in_column`` (with its own provenance).

A separate step from ``topkima calibrate`` on purpose: its ~240 column transients (each through
several ramp cycles with the real sense amplifier) would more than double the quick calibration that
``make demo`` runs; an artefact without the field is read as before (the model then uses the
ideal-source offset alone). The jobs run through the resumable cache like every calibration job.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.calibration.artefact import ArtefactError, load_calibration
from topkima.calibration.artefact_extension import add_measured_section


def settings_of_artefact(cal):
    """The calibration settings an artefact was made with: its design (from its provenance), corner and seed."""
    from topkima.circuits.design import design_from_json, load_design
    from topkima.circuits.settings import CalSettings
    prov = cal.provenance
    # the design as recorded (a design file need not be a preset), else the preset of its name
    design = design_from_json(prov["design"]) if prov.get("design") else load_design(prov.get("design_name", "topkima-65nm"))
    if "design_sha256" in prov and design.sha256() != prov["design_sha256"]:
        raise ArtefactError(f"{cal.path}: its design {prov.get('design_name')!r} no longer has the hash it was "
                            "calibrated with; recalibrate it first (topkima calibrate)")
    return CalSettings(quick=bool(prov.get("quick", False)), corner_name=cal.corner, seed=int(prov.get("seed", 2024)),
                       design=design)


def _check_supported(cal, design, corner_name: str) -> None:
    """The in-column testbench (:mod:`topkima.circuits.comparator_column`) is written for the 65 nm
    technology's netlists, the 65 nm clocks, 32 + 32 replica rows and its 64-element vectors; other designs are refused
    rather than simulated with the wrong cards, clocks or rows."""
    from topkima.circuits import technology, timing
    other = [what for what, differs in (
        ("technology", technology.payload(design, corner_name) is not None),
        ("clocks", timing.payload(design) is not None),
        ("replica rows", (design.geometry.n_ramp_rows, design.geometry.n_cal_rows) != (32, 32)),
        ("key elements", design.geometry.n_elements != 64)) if differs]
    if other:
        raise ArtefactError(f"{cal.path}: topkima calibrate-in-column measures designs with the 65 nm technology, "
                            f"clocks and 32 + 32 replica rows only, with 64 key elements; this design "
                            f"({design.name}) differs in {', '.join(other)}: its artefact is used without the "
                            "in-column threshold")


#: wall-clock limit per job (s): a bisection of ~10 column transients to cycle 30 took ~6 min on a shared core
TIMEOUT_S = 3600.0


def add_in_column_threshold(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                            cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S,
                            command: str = "") -> dict:
    """Run the in-column threshold jobs for ``artefact`` (None: the committed one), add their section
    to it and write it to ``out`` (None: in place); returns the section."""
    from topkima.circuits import comparator_column
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    _check_supported(cal, settings.design, settings.corner_name)
    return add_measured_section(cal, settings, comparator_column.plan(settings), lambda r: artefact_section(cal, r),
                                "comparator", "in_column", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)


def _ideal_source_intercept_v(cal, vcm_v):
    """The ideal-source offset model's intercept (nominal latch) at common modes ``vcm_v``, piecewise
    linear between its characterised common modes and extrapolated beyond them, as the model reads it."""
    lin = cal.comparator["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    g, icpt = np.asarray(lin["vcm_v"], float)[order], np.asarray(lin["intercept_v"], float)[order]
    seg = np.clip(np.searchsorted(g, vcm_v) - 1, 0, g.size - 2)
    return icpt[seg] + (np.asarray(vcm_v) - g[seg]) * (icpt[seg + 1] - icpt[seg]) / (g[seg + 1] - g[seg])


def fit_nominal_shift(cal, nominal_runs: list[dict]) -> dict:
    """The nominal latch's in-column shift (threshold − ideal-source intercept) as a plane in the
    common mode and the decision cycle, least squares over the nominal runs of the grid:
    shift = shift_v + per_v·(CM − vcm0_v) + per_cycle_v·(j − cycle0)."""
    cm = np.array([r["vcm_v"] for r in nominal_runs])
    j = np.array([r["firing_cycle"] for r in nominal_runs], float)
    shift = np.array([r["threshold_v"] for r in nominal_runs]) - _ideal_source_intercept_v(cal, cm)
    cm0, j0 = float(np.round(np.mean(cm), 3)), float(np.round(np.mean(j)))
    a = np.column_stack([np.ones_like(cm), cm - cm0, j - j0])
    coef, *_ = np.linalg.lstsq(a, shift, rcond=None)
    resid = shift - a @ coef
    return {"model": "shift = shift_v + per_v * (CM - vcm0_v) + per_cycle_v * (cycle - cycle0), held constant "
                     "outside cycle_range; least squares over the nominal runs",
            "vcm0_v": cm0, "cycle0": j0, "shift_v": float(coef[0]), "per_v": float(coef[1]),
            "per_cycle_v": float(coef[2]), "residual_rms_v": float(np.sqrt(np.mean(resid ** 2))),
            "residual_max_v": float(np.max(np.abs(resid))), "n_runs": int(cm.size),
            "vcm_range_v": [float(cm.min()), float(cm.max())], "cycle_range": [int(j.min()), int(j.max())]}


def artefact_section(cal, results: dict) -> dict:
    """The ``comparator.in_column`` artefact field from the jobs' results (by label,
    :func:`topkima.circuits.comparator_column.cases`): the base run's nominal threshold and common
    mode, the devices' in-column sensitivities (both shifts decided in the same cycle), and the
    nominal shift's plane in the common mode and the cycle (:func:`fit_nominal_shift`)."""
    from topkima.circuits import comparator_column as cc
    from topkima.circuits.comparator_fit import MIRROR_PAIRS
    block = cc.BLOCK
    nominal = results[f"{block}/none"]
    sens = {}
    for dev in cc.DEVICES:
        up, down = results[f"{block}/{dev}+"], results[f"{block}/{dev}-"]
        sens[dev] = (up["threshold_v"] - down["threshold_v"]) / (up["sa_dvt_v"][dev] - down["sa_dvt_v"][dev])
    nominal_runs = [r for r in results.values() if not r["sa_dvt_v"]]
    return {
        "method": "full column testbench with the sense amplifier (circuits/comparator_column.py): input patterns "
                  "crossing near a chosen ramp cycle at a chosen common mode; bisection on a small charge taken from "
                  "(or given to) RBL_R during the MAC phase until the decision of that cycle flips; threshold = "
                  "V(RBL_R) - V(RBL_L) at the sense instant of that cycle at the flip. Nominal latch on a grid of "
                  "cycles and common modes; devices shifted +-n_sigma decided in the base run's cycle",
        "inputs": list(cc.INPUTS), "keys": list(cc.KEYS),
        "vcm_v": float(nominal["vcm_v"]), "cycle": int(nominal["firing_cycle"]),
        "threshold_nominal_v": float(nominal["threshold_v"]),
        "n_sigma": cc.N_SIGMA,
        "sensitivity_v_per_v": sens,
        "mirror_devices": {dev: dict(MIRROR_PAIRS)[dev] for dev in cc.DEVICES},
        "mirror_sign": "the mirror device of each pair acts with the opposite sign",
        "nominal_shift": fit_nominal_shift(cal, nominal_runs),
        "runs": [dict(results[key], label=key.split("/", 1)[1]) for key in sorted(results)],
        "tol_v": cc.TOL_V,
    }
