"""`topkima calibrate`: plan every block's SPICE jobs, run them, fit each block's section, write the artefact.

Jobs run in worker processes (2 by default) through :func:`topkima.circuits.jobs.run_jobs`
with a cache keyed by each job's netlists and arguments, so an interrupted run resumes and
redoes only unfinished simulations. The artefact is validated before it is written
(atomically).
"""
from __future__ import annotations

import datetime as _dt
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

from topkima.calibration.artefact import SCHEMA_VERSION, validate, write_atomic

#: Blocks in the order they are planned and fitted, each with the module under
#: topkima.circuits that holds its ``plan(settings)`` and ``artefact_section(settings, results)``.
BLOCKS = {"column": "column_fit", "ramp": "ramp", "comparator": "comparator_fit", "digital": "digital"}


def _modules():
    import importlib
    return {name: importlib.import_module(f"topkima.circuits.{module}") for name, module in BLOCKS.items()}


def plan_all(settings) -> dict[str, list]:
    """Every block's jobs, each carrying the design's technology and clocks (its netlists are written for them;
    a job whose function never reads the clocks, :func:`topkima.circuits.timing.clock_free`, carries none)."""
    from dataclasses import replace
    from topkima.circuits import technology, timing
    from topkima.circuits.jobs import resolve
    tech = technology.payload(settings.design, settings.corner_name)
    clocks = timing.payload(settings.design)
    with technology.using(tech), timing.using(clocks):
        plans = {name: mod.plan(settings) for name, mod in _modules().items()}
    return {name: [replace(job, technology=tech, timing=None if timing.is_clock_free(resolve(job.fn)) else clocks)
                   for job in jobs] for name, jobs in plans.items()}


def provenance(settings, wall_time_s: float, n_jobs: int, n_cached: int, command_line: str) -> dict:
    from topkima.circuits import mismatch, netlist as nl, spice
    files = sorted(p.name for p in nl.netlist_dir().iterdir() if p.suffix in (".sp", ".lib"))
    return {
        "ngspice_version": spice.ngspice_version(),
        "pyspice_version": metadata.version("PySpice"),
        "topkima_version": metadata.version("topkima"),
        "design_name": settings.design.name,
        "design_sha256": settings.design.sha256(),
        "design": settings.design.to_dict(),
        **_model_card(settings.design),
        "netlist_sha256": {f: nl.file_sha256(f) for f in files if f != nl.MODEL_CARD},
        "corner": settings.corner_name,
        "corner_emulation": settings.corner.description,
        "temperature_c": settings.temperature_c,
        "supplies": settings.supplies.as_dict(),
        "seed": settings.seed,
        "quick": settings.quick,
        "mc_samples": settings.mc_samples,
        "a_vt_n_v_m": mismatch.a_vt_of(settings.design, "n"),
        "a_vt_p_v_m": mismatch.a_vt_of(settings.design, "p"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command_line": command_line,
        "wall_time_s": round(wall_time_s, 1),
        "n_simulation_jobs": n_jobs,
        "n_jobs_from_cache": n_cached,
        "python_version": sys.version.split()[0],
    }


def _model_card(design) -> dict:
    """The model card's name and SHA-256 (with the files its sections include, for another technology)."""
    from topkima.circuits import netlist as nl, technology
    if technology.payload(design) is None:
        return {"model_card": nl.MODEL_CARD, "model_card_sha256": nl.file_sha256(nl.MODEL_CARD)}
    return {"model_card": design.technology.model_card,
            "model_card_sha256": technology.card_sha256(str(design.model_card_path()))}


def run_calibration(settings, out: str | Path, *, workers: int = 2, cache_dir: str | Path | None = None,
                    timeout_s: float | None = None, progress=None, command_line: str | None = None) -> dict:
    """Run the whole characterisation and write the artefact to ``out``; return it."""
    from topkima.circuits.jobs import DEFAULT_TIMEOUT_S, ResultCache, run_jobs
    start = time.monotonic()
    plans = plan_all(settings)
    jobs = [job for block_jobs in plans.values() for job in block_jobs]
    cached = [0]

    def count(done, total, job, from_cache):
        cached[0] += from_cache
        if progress:
            progress(done, total, job, from_cache)

    results = run_jobs(jobs, workers=workers, cache=ResultCache(cache_dir),
                       timeout_s=timeout_s or DEFAULT_TIMEOUT_S, progress=count)
    from topkima.circuits import technology, timing
    sections = {}
    with technology.using(technology.payload(settings.design, settings.corner_name)), \
            timing.using(timing.payload(settings.design)):
        for name, mod in _modules().items():
            sections[name] = mod.artefact_section(settings, {j.label: results[j.label] for j in plans[name]})
    cmd = command_line if command_line is not None else " ".join(shlex.quote(a) for a in sys.argv)
    artefact = {"schema_version": SCHEMA_VERSION, "corner": settings.corner_name,
                "provenance": provenance(settings, time.monotonic() - start, len(jobs), cached[0], cmd),
                **sections}
    validate(artefact, "new artefact")
    write_atomic(out, artefact)
    return artefact
