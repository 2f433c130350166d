"""Golden SPICE runs: end-to-end column conversions (``topkima golden``) and the time to STOP
through the digital chain (``topkima stop-time``), run through the resumable job cache and
written with their provenance. The tests read these files; they never regenerate them."""
from __future__ import annotations

import time
from pathlib import Path

from topkima.calibration.artefact import write_atomic
from topkima.calibration.calibrate import provenance
from topkima.circuits import golden, topk_chain
from topkima.circuits.jobs import ResultCache, counting_progress, run_jobs, spice_times_s
from topkima.circuits.settings import CalSettings


def generate_golden(set_name: str, *, groups: int | None, columns: int, seed: int, workers: int,
                    cache_dir: str | None, out: str | Path | None, command: str) -> tuple[Path, int, int, str]:
    """Plan, run (resuming from the cache) and write one golden set; returns (file, conversions,
    groups, corner). SpiceError / JobError propagate."""
    gset = golden.golden_set(set_name)
    groups_n = groups if groups is not None else gset.default_groups
    out = Path(out or gset.path)
    settings = CalSettings(quick=False, corner_name=gset.corner_name, seed=seed)
    jobs, planned = golden.plan_set(gset, settings, groups_n, columns)
    cache = ResultCache(cache_dir)
    progress, n_cached = counting_progress()

    start = time.monotonic()
    results = run_jobs(jobs, workers=workers, cache=cache, progress=progress)
    prov = provenance(settings, time.monotonic() - start, len(jobs), n_cached[0], command)
    times = spice_times_s(cache, jobs)
    if times:
        prov.update(spice_time_s_total=round(sum(times), 1), spice_time_s_per_conversion=round(sum(times) / len(times), 1),
                    n_conversions_timed=len(times), workers=workers)
    write_atomic(out, golden.assemble(settings, planned, results, prov, held_out=gset.held_out, set_name=gset.name),
                 indent=None)
    return out, len(jobs), len(planned), gset.corner_name


def measure_stop_times(doc: dict, golden_file: str, *, groups: int, columns: int, k: int, workers: int,
                       cache_dir: str | None, out: str | Path, command: str) -> dict:
    """Time to STOP in ngspice for the first ``groups`` groups of a loaded golden set ``doc``
    (``columns`` columns each, top-``k``); writes and returns the stored document."""
    n_groups = min(groups, len(doc["groups"]))
    jobs = topk_chain.plan(doc, n_groups, columns, k)
    cache = ResultCache(cache_dir)
    progress, n_cached = counting_progress()

    start = time.monotonic()
    results = run_jobs(jobs, workers=workers, cache=cache, progress=progress)
    settings = CalSettings(quick=False, corner_name=doc["corner"], seed=doc["seed"])
    prov = provenance(settings, time.monotonic() - start, len(jobs), n_cached[0], command)
    times = spice_times_s(cache, jobs)
    prov.update(spice_time_s_total=round(sum(times), 1), workers=workers, golden_file=str(golden_file),
                golden_set=doc["set"])
    runs = []
    for g, job in enumerate(jobs):
        cols = doc["groups"][g]["columns"][:columns]
        runs.append({"group": g, "labels": [c["label"] for c in cols],
                     "golden_firing_cycles": [c["firing_cycle"] for c in cols], **results[job.label]})
    stored = {"format_version": 1, "what": "time to STOP from the start of ramp cycle 1, measured in ngspice: "
              "the golden columns' bitlines replayed into their sense amplifiers, request latches, the arbiter "
              "cell chain of a 256-column tree and the k-counter (circuits/topk_chain.py)",
              "k": k, "columns_per_run": columns, "provenance": prov, "runs": runs}
    write_atomic(out, stored)
    return stored
