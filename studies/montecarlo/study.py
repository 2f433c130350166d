"""`topkima montecarlo`: Monte Carlo variation studies of the calibrated Topkima macro.

N chip instances are drawn from the calibration artefact's random spreads (read-port and
replica-cell Pelgrom σ, comparator device σ's and the residual of its offset model, comparator
noise), each spread multiplied by a σ multiplier s (``TopkimaMacro(sigma_scale=s)``), and each
instance converts one fixed workload (:mod:`.workload`). Per s the study reports, against the
ideal macro on the same inputs (:mod:`.instance`, :mod:`.summary`):

* **code error** per ideal code (mean, σ) of the full-ramp conversion of every key;
* **top-k recall and precision** of the selected key sets (and recall against the nominal chip
  and against the exact digital top-k of the integer scores);
* the **early-stop fraction α** and the ramp ADC's **INL/DNL** spread;
* all-MiniLM-L6-v2 **probe accuracy and flip rate** with the chip in the attention, with
  confidence bands across instances (:mod:`.accuracy`);
* **SPICE vs behavioural Monte Carlo** with two-sample tests (:mod:`.spice_comparison`).

Randomness comes from one root seed by explicit spawn keys (:mod:`.seeds`): any worker count or
scheduler gives identical figures. Each finished (s, instance) result is written atomically as
its own JSON file under ``OUT/instances/<identity hash>/`` (:mod:`.identity`), so an
interrupted study resumes and redoes nothing finished.

Sources: Pelgrom, Duinmaijer, Welbers, "Matching properties of MOS transistors", IEEE JSSC
24(5), 1989 (the mismatch model behind the artefact's σ's).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_json_atomic
from topkima.circuits.jobs import Progress
from topkima.studies.code_version import code_version
from topkima.studies.montecarlo.accuracy import accuracy_bundle, accuracy_metrics
from topkima.studies.montecarlo.config import StudyConfig, StudyError, sigma_label
from topkima.studies.montecarlo.execution import connect, run_tasks
from topkima.studies.montecarlo.identity import accuracy_identity, artefact_sha256, instance_identity, short_hash
from topkima.studies.montecarlo.instance import instance_metrics
from topkima.studies.montecarlo.spice_comparison import spice_vs_behavioural
from topkima.studies.montecarlo.summary import summarise, timing
from topkima.studies.montecarlo.workload import workload


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


#: summary entries that are not results of the study: times, where it ran, the figure files
#: (they differ between otherwise identical runs; everything else is identical for any executor)
NON_RESULT_KEYS = ("wall_time_s", "timing", "execution", "figures")


def run_montecarlo(out_dir: str | Path, config: StudyConfig | None = None, *, quick: bool = False,
                   workers: int = 2, scheduler: str | None = None, scheduler_timeout_s: float = 5.0,
                   golden_path: str | Path | None = None, figures: bool = True, log=None) -> dict:
    """Run (or resume) a Monte Carlo study; write ``summary.json`` and the figures; return the summary.

    Parameters
    ----------
    out_dir : folder for ``summary.json``, the figures (PNG and SVG) and ``instances/``.
    config : :class:`StudyConfig`; default ``StudyConfig()``, or ``StudyConfig.quick()`` with ``quick``.
    workers : local worker processes (0: run in this process). Ignored with ``scheduler``.
    scheduler : address of a Dask distributed scheduler (e.g. ``tcp://host:8786``): run the
        instances there. Results are identical to a local run.
    scheduler_timeout_s : how long to try to reach the scheduler before a :class:`StudyError`.
    golden_path : golden SPICE conversions for the SPICE comparison (default: the tests' file).
    figures : write the plots.
    log : callable taking one line (progress, on stderr by default).
    """
    if log is None:
        def log(text):
            print(text, file=sys.stderr, flush=True)
    cfg = (config if config is not None else (StudyConfig.quick() if quick else StudyConfig())).validated()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise StudyError(f"workers must be an integer ≥ 0, got {workers!r}")
    t_start = time.time()
    out = Path(out_dir)
    client = connect(scheduler, scheduler_timeout_s) if scheduler else None
    try:
        return _study(cfg, out, workers, client, scheduler, golden_path, figures, log, t_start)
    finally:
        if client is not None:
            client.close()


def _study(cfg, out, workers, client, scheduler, golden_path, figures, log, t_start) -> dict:
    from topkima.calibration import load_calibration
    cal = load_calibration()
    art, code = artefact_sha256(cal), code_version()
    inst_id = instance_identity(cfg, art, code)
    inst_dir = out / "instances" / short_hash(inst_id)
    inst_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(inst_dir / "config.json", inst_id)
    results: dict[tuple[str, int], dict] = {}
    tasks = []
    for s in cfg.sigma_scales:
        for i in range(cfg.instances):
            key = f"sigma{sigma_label(s)}_i{i:06d}"
            found = _read_json(inst_dir / f"{key}.json")
            if found is not None and found.get("index") == i and sigma_label(found.get("sigma_scale", -1)) == sigma_label(s):
                results[(sigma_label(s), i)] = found
            else:
                tasks.append((key, instance_metrics, (cfg, s, i)))
    acc_results: dict[tuple[str, int], dict] = {}
    acc_tasks, bundle, acc_dir = [], None, None
    if cfg.accuracy_instances:
        acc_id = accuracy_identity(cfg, art, code)
        acc_dir = out / "accuracy" / short_hash(acc_id)
        acc_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(acc_dir / "config.json", acc_id)
        missing = []
        for s in cfg.sigma_scales:
            for i in range(cfg.accuracy_instances):
                key = f"sigma{sigma_label(s)}_i{i:04d}"
                found = _read_json(acc_dir / f"{key}.json")
                if found is not None and found.get("index") == i:
                    acc_results[(sigma_label(s), i)] = found
                else:
                    missing.append((key, s, i))
        bundle = accuracy_bundle(cfg, acc_dir, log)   # cached after the first run
        acc_tasks = [(f"acc_{key}", accuracy_metrics, (cfg, s, i, bundle)) for key, s, i in missing]

    def store(key: str, result: dict) -> None:
        label = sigma_label(result["sigma_scale"])
        if key.startswith("acc_"):
            write_json_atomic(acc_dir / f"{key[4:]}.json", result, indent=None)
            acc_results[(label, result["index"])] = result
        else:
            write_json_atomic(inst_dir / f"{key}.json", result, indent=None)
            results[(label, result["index"])] = result

    total = len(cfg.sigma_scales) * (cfg.instances + cfg.accuracy_instances)
    progress = Progress(total, log, prefix="montecarlo: ", already=total - len(tasks) - len(acc_tasks))
    where = f"Dask scheduler {scheduler}" if client is not None else (
        f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "this process")
    if tasks or acc_tasks:
        log(f"montecarlo: {len(tasks)} chip instances and {len(acc_tasks)} accuracy runs to do on {where}; "
            f"finished ones are kept in {inst_dir}")
    t_tasks = time.time()
    # the long accuracy runs first, so that the instances fill the workers around them
    run_tasks(acc_tasks + tasks, store, workers=workers, client=client, progress=progress)
    t_tasks = time.time() - t_tasks
    spice, spice_samples = (None, None)
    if cfg.spice_instances:
        spice, spice_samples = spice_vs_behavioural(cal, cfg.seed, cfg.spice_instances, golden_path, cfg.k)
    summary = summarise(cfg, results, acc_results, bundle, spice)
    summary["workload"] = workload(cfg).describe()
    summary["execution"] = {"where": where, "tasks_run": len(tasks) + len(acc_tasks), "instances_dir": str(inst_dir)}
    summary["timing"] = timing(results, acc_results, t_tasks, len(tasks))
    summary["wall_time_s"] = round(time.time() - t_start, 2)
    if figures:
        from topkima.studies.montecarlo.plots import write_figures
        summary["figures"] = write_figures(out, summary, spice_samples)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "summary.json", summary, indent=1)
    log(f"montecarlo: wrote {out / 'summary.json'} ({summary['wall_time_s']:.0f} s)")
    return summary


