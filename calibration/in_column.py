"""`topkima calibrate-in-column`: measure the comparator's in-column threshold in ngspice and add it
to an existing artefact as ``comparator.in_column`` (with its own provenance).

A separate step from ``topkima calibrate`` on purpose: its ~70 column transients (each through
several ramp cycles with the real sense amplifier) would double the quick calibration that
``make demo`` runs; an artefact without the field is read as before (the model then uses the
ideal-source offset alone). The jobs run through the resumable cache like every calibration job.
"""
from __future__ import annotations

import time
from pathlib import Path

from topkima.calibration.artefact import ArtefactError, load_calibration, validate, write_atomic


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


#: wall-clock limit per job (s): a bisection of ~11 column transients took 2.5–3 min on a shared core
TIMEOUT_S = 3600.0


def add_in_column_threshold(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                            cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S,
                            command: str = "") -> dict:
    """Run the in-column threshold jobs for ``artefact`` (None: the committed one), add their section
    to it and write it to ``out`` (None: in place); returns the section."""
    from topkima.calibration.calibrate import provenance
    from topkima.circuits import comparator_column
    from topkima.circuits.jobs import ResultCache, print_progress, run_jobs
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    _check_supported(cal, settings.design, settings.corner_name)
    jobs = comparator_column.plan(settings)
    cache = ResultCache(cache_dir)
    n_cached = [0]
    report = print_progress()

    def progress(done, total, job, from_cache):
        n_cached[0] += from_cache
        report(done, total, job, from_cache)

    start = time.monotonic()
    results = run_jobs(jobs, workers=workers, cache=cache, timeout_s=timeout_s, progress=progress)
    section = comparator_column.artefact_section({j.label: results[j.label] for j in jobs})
    section["provenance"] = provenance(settings, time.monotonic() - start, len(jobs), n_cached[0], command)
    data = dict(cal.data)
    data["comparator"] = dict(data["comparator"], in_column=section)
    validate(data, "artefact with comparator.in_column")
    write_atomic(out if out is not None else cal.path, data)
    return section
