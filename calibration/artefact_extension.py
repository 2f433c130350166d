"""Add a measured section to an existing artefact: the step shared by `topkima calibrate-in-column`,
`calibrate-droop` and `calibrate-trim`. Their jobs run through the resumable job cache; the section
gets its own provenance (with the SPICE time itself, also when the jobs come from the cache); the
extended artefact is validated and written atomically, in place or to another file."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from topkima.calibration.artefact import Calibration, validate, write_atomic


def add_measured_section(cal: Calibration, settings, jobs, section_of: Callable[[dict], dict], block: str, field: str,
                         out: str | Path | None, *, workers: int, cache_dir, timeout_s: float, command: str) -> dict:
    """Run ``jobs``, make the section from their results by job label (``section_of``), add it to
    ``cal`` as ``block.field`` and write the artefact to ``out`` (None: in place); returns the section."""
    from topkima.calibration.calibrate import provenance
    from topkima.circuits.jobs import ResultCache, counting_progress, run_jobs, spice_times_s
    cache = ResultCache(cache_dir)
    progress, n_cached = counting_progress()
    start = time.monotonic()
    results = run_jobs(jobs, workers=workers, cache=cache, timeout_s=timeout_s, progress=progress)
    section = section_of({j.label: results[j.label] for j in jobs})
    section["provenance"] = provenance(settings, time.monotonic() - start, len(jobs), n_cached[0], command)
    times = spice_times_s(cache, jobs)
    if times:
        section["provenance"]["spice_time_s_total"] = round(sum(times), 1)
    data = dict(cal.data)
    data[block] = dict(data[block], **{field: section})
    validate(data, f"artefact with {block}.{field}")
    write_atomic(out if out is not None else cal.path, data)
    return section
