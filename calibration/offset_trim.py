"""`topkima calibrate-trim`: trim the comparator's offset in ngspice (:mod:`topkima.circuits.comparator_trim`)
on a Monte Carlo of latch instances and add what is left to an existing artefact as
``comparator.offset_trim`` (with its own provenance).

The section holds each instance's trim code and residual offset at every common mode of the offset
bench, their mean and spread, and a linear model of the residual in the device threshold shifts of
the same form as ``comparator.offset.linear_model``. A chip with the trim (``--chip-variant
offset-trimmed``, :mod:`topkima.studies.circuit_whatif`) draws its comparators' offsets from that
model: the trimmed offset stays a function of the same device draws, so how it varies with the
common mode (the trim is set at one) is kept. A separate step from ``topkima calibrate`` like
``calibrate-in-column``: an artefact without the field is read as before.

The instances are new draws (``settings.rng("comparator.offset_trim")``, the artefact's seed): the
linear model needs more samples than the quick calibration's 24 (22 devices and an intercept).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.calibration.artefact import load_calibration
from topkima.calibration.artefact_extension import add_measured_section
from topkima.calibration.in_column import settings_of_artefact

RNG_PURPOSE = "comparator.offset_trim"
#: Monte Carlo instances [ours]: ~3 samples per fitted term of the 23-term linear model; ~1 s each on one core (72 in 70 s)
N_SAMPLES = 72
#: wall-clock limit per job (s): ~46 transients of ~0.1 s, with room for a loaded machine
TIMEOUT_S = 600.0


def plan(settings, n_samples: int = N_SAMPLES):
    """The trim jobs: one per drawn latch instance (device draws plus the corner's global shift), each
    carrying the design's technology and clocks as :func:`topkima.calibration.calibrate.plan_all` does."""
    from topkima.circuits import technology, timing
    from topkima.circuits.comparator import BLOCK, DEVICES, NETLISTS, corner_delvto_v, draw_mismatch_v
    from topkima.circuits.comparator_fit import _common
    from topkima.circuits.jobs import Job
    tech, clocks = technology.payload(settings.design, settings.corner_name), timing.payload(settings.design)
    draws = draw_mismatch_v(settings.rng(RNG_PURPOSE), n_samples, design=settings.design)
    shift = corner_delvto_v(settings.corner)
    jobs = [Job(BLOCK, f"{BLOCK}/trim/{i:04d}", "topkima.circuits.comparator_trim:trim_sample",
                {"delvto_v": {d.name: shift[d.name] + float(draws[d.name][i]) for d in DEVICES},
                 **_common(settings)}, NETLISTS, technology=tech, timing=clocks)
            for i in range(n_samples)]
    return jobs, draws


def artefact_section(results: list[dict], draws: dict, untrimmed_linear_model: dict) -> dict:
    """The ``comparator.offset_trim`` section from the jobs' results (in draw order)."""
    from topkima.circuits import comparator_trim as ct
    from topkima.circuits.comparator_fit import fit_offset_linear_model, sigma_confidence_interval
    residual = np.array([r["residual_offset_v"] for r in results])     # (n, n_vcm)
    vcm = list(results[0]["vcm_v"])
    if vcm != list(untrimmed_linear_model["vcm_v"]):
        raise ValueError(f"the trim's common modes {vcm} differ from the offset model's "
                         f"{untrimmed_linear_model['vcm_v']}: remake the artefact with this code")
    n = residual.shape[0]
    by_vcm = []
    for j, cm in enumerate(vcm):
        sigma = float(np.std(residual[:, j], ddof=1))
        by_vcm.append({"vcm_v": cm, "mean_v": float(residual[:, j].mean()), "sigma_v": sigma,
                       "sigma_ci95_v": list(sigma_confidence_interval(sigma, n))})
    return {
        "method": "per-column sign-magnitude capacitor DAC on the latch's integration nodes xp / xn, set at "
                  "power-up by a successive approximation of decisions at zero input; residual offset bisected "
                  "at each common mode (circuits/comparator_trim.py)",
        "c_step_f": ct.C_TRIM_STEP_F, "code_max": ct.TRIM_CODE_MAX, "vcm_trim_v": ct.VCM_TRIM_V,
        "rng_purpose": RNG_PURPOSE, "n_samples": n,
        "codes": [int(r["code"]) for r in results], "n_clipped": int(sum(bool(r["clipped"]) for r in results)),
        "n_decisions_per_trim": int(max(r["n_decisions"] for r in results)),
        "vcm_v": vcm, "by_vcm": by_vcm,
        "residual_offset_v": residual.tolist(),
        "draws_dvth_v": {name: np.asarray(x).tolist() for name, x in draws.items()},
        "linear_model": fit_offset_linear_model(draws, residual),
    }


def add_offset_trim(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                    cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S, n_samples: int = N_SAMPLES,
                    command: str = "") -> dict:
    """Run the trim jobs for ``artefact`` (None: the committed one), add their section to it and write
    it to ``out`` (None: in place); returns the section."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 64:
        raise ValueError(f"n_samples must be an integer ≥ 64 (the residual's linear model fits 23 terms and "
                         f"over-fits fewer samples: 30 draw twice SPICE's spread at the trim's common mode), "
                         f"got {n_samples!r}")
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    jobs, draws = plan(settings, n_samples)
    untrimmed = cal.data["comparator"]["offset"]["linear_model"]
    return add_measured_section(cal, settings, jobs,
                                lambda r: artefact_section([r[j.label] for j in jobs], draws, untrimmed),
                                "comparator", "offset_trim", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)
