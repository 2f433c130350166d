"""`topkima calibrate-in-column-devices`: measure the in-column threshold's sensitivity to every other
sense-amplifier device in ngspice (:mod:`topkima.circuits.comparator_column_devices`) and add it to an
artefact as ``comparator.in_column_devices`` (with its own provenance).

It extends ``comparator.in_column`` (``topkima calibrate-in-column``, which it requires): that
section measured the three offset-dominant pairs; this one the next devices (reset switches, output
buffer; :data:`topkima.circuits.comparator_column_devices.DEVICES`), at the same base pattern and cycle. The model
(:func:`topkima.behavioral.params.in_column_threshold`) takes each measured device's in-column
sensitivity instead of its ideal-source one. 8 column bisections (several minutes each on a shared
core), so a step of its own, run through the resumable job cache.
"""
from __future__ import annotations

from pathlib import Path

from topkima.calibration.artefact import ArtefactError, load_calibration
from topkima.calibration.artefact_extension import add_measured_section
from topkima.calibration.in_column import TIMEOUT_S, _check_supported, settings_of_artefact


def add_in_column_devices(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                          cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S,
                          command: str = "") -> dict:
    """Run the device jobs for ``artefact`` (None: the committed one), add their section to it and
    write it to ``out`` (None: in place); returns the section."""
    from topkima.circuits import comparator_column_devices
    cal = load_calibration(artefact)
    if not cal.comparator.get("in_column"):
        raise ArtefactError(f"{cal.path}: has no comparator.in_column; run topkima calibrate-in-column first "
                            "(the device sensitivities extend that section)")
    settings = settings_of_artefact(cal)
    _check_supported(cal, settings.design, settings.corner_name)
    return add_measured_section(cal, settings, comparator_column_devices.plan(settings),
                                lambda r: artefact_section(cal, r),
                                "comparator", "in_column_devices", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)


def artefact_section(cal, results: dict) -> dict:
    """The ``comparator.in_column_devices`` field from the jobs' results (by label,
    :func:`topkima.circuits.comparator_column_devices.cases`): each device's in-column sensitivity
    (V of threshold per V of its threshold shift, from its +-N_SIGMA runs decided in the same cycle),
    beside the ideal-source one at the base run's common mode; the nominal base run is
    ``comparator.in_column``'s."""
    import numpy as np
    from topkima.circuits import comparator_column as cc
    from topkima.circuits import comparator_column_devices as ccd
    block = ccd.BLOCK
    ic = cal.comparator["in_column"]
    lin = cal.comparator["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    vcm, lin_sens = np.asarray(lin["vcm_v"], float)[order], np.asarray(lin["sensitivity_v_per_v"], float)[order]
    sens, bracket, ideal = {}, {}, {}
    for dev in ccd.DEVICES:
        up, down = results[f"{block}/{dev}+"], results[f"{block}/{dev}-"]
        span = up["sa_dvt_v"][dev] - down["sa_dvt_v"][dev]
        sens[dev] = (up["threshold_v"] - down["threshold_v"]) / span
        # the bisection leaves each threshold within half its final bracket: the sensitivity's resolution
        half = [0.5 * abs(r["bracket_v"][1] - r["bracket_v"][0]) for r in (up, down)]
        bracket[dev] = (half[0] + half[1]) / span
        ideal[dev] = float(np.interp(ic["vcm_v"], vcm, lin_sens[:, lin["devices"].index(dev)]))
    return {
        "method": "the in-column threshold's bisection (circuits/comparator_column.py) on its base pattern and "
                  "cycle, one sense-amplifier device at a time shifted +-n_sigma of its Pelgrom sigma "
                  "(circuits/comparator_column_devices.py); sensitivity = threshold difference / shift difference",
        # the device runs' cycle (an artefact measured before the grid, e.g. the ss one, records none)
        "vcm_v": float(ic["vcm_v"]), "cycle": int(ic.get("cycle", cc.BASE_CYCLE)),
        "n_sigma": ccd.N_SIGMA,
        "sensitivity_v_per_v": sens,
        "resolution_v_per_v": bracket,
        "ideal_source_sensitivity_v_per_v": ideal,
        "mirror_check": ccd.MIRROR_CHECK,
        "runs": [dict(results[key], label=key.split("/", 1)[1]) for key in sorted(results)],
        "tol_v": cc.TOL_V,
    }
