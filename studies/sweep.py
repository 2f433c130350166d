"""`topkima sweep`: design sweeps — calibrate each point of a grid of design changes and tabulate its figures.

A :class:`SweepConfig` names a base design (a preset or a TOML file, :mod:`topkima.circuits.design`)
and one or more varied fields, each with its values (``read_port.l_m = 240e-9, 480e-9, 960e-9``);
the points are their Cartesian product. Each point is the base design with those fields changed
(validated like a design file), calibrated by :func:`topkima.calibration.calibrate.run_calibration`
through one SPICE job cache shared by all points — a job whose arguments do not depend on the
varied fields (the comparator's and the digital blocks' for a read-port sweep) runs once for the
whole sweep — and reduced to its key figures (:func:`point_figures`):

* ``unit_step_v``: bitline step per 0.5 ns PWM unit near the precharge level (``column.unit_step_vs_v_rbl``);
* ``cell_sigma_rel``: read-stack current mismatch σ at V(RBL) = 0.4 V;
* ``lsb_v``, ``inl_max_abs_lsb``, ``dnl_max_abs_lsb``: the nominal ramp's LSB and end-point INL/DNL;
* ``sa_offset_sigma_v``: the comparator's offset σ;
* ``e_conversion_j``: one conversion's bitline and wordline energy at input activity 0.5 plus the
  sense amplifier's 32 decisions (``n_ramp_steps × e_per_decision_j``);
* ``t_arb_s``: arbiter + encoder + k-counter at the slow corner;
* ``topk_recall``: the chip's top-k recall against the exact digital top-k on a fixed synthetic
  workload (:func:`topk_recall`), mean over a few chip instances drawn from the artefact's spreads.

Outputs in ``OUT``: ``points/<id>/calibration.json`` (each point's artefact) and
``points/<id>/result.json`` (its figures, written atomically when the point is done), one table
``summary.json`` and one plot per figure against the first varied field (a line per combination
of the others) in ``plots/``. A killed sweep resumes: finished points are read back, and an
unfinished point's calibration resumes from the SPICE job cache (``OUT/cache``). With a Dask
scheduler the points are the cluster's tasks (each calibrates in its Dask worker process, one
ngspice per process: start the workers with ``--nthreads 1``); without one they run one after
another here, each with ``workers`` local SPICE worker processes.
"""
from __future__ import annotations

import itertools
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_json_atomic

#: the figures of a point, in table order, with their units (for the plots)
FIGURES = {"unit_step_v": "V", "cell_sigma_rel": "", "lsb_v": "V", "inl_max_abs_lsb": "LSB",
           "dnl_max_abs_lsb": "LSB", "sa_offset_sigma_v": "V", "e_conversion_j": "J", "t_arb_s": "s",
           "topk_recall": ""}


class SweepError(ValueError):
    """A sweep that cannot run as asked; names the option at fault."""


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep computes. Every field is part of the points' identity except ``workers``."""

    design: str = "topkima-65nm"                 #: base design: preset name or TOML file
    varies: tuple[tuple[str, tuple[float, ...]], ...] = ()  #: (field, values) per varied field
    quick: bool = False                          #: quick calibrations (fewer Monte Carlo samples, sparser sweeps)
    corner: str = "tt"                           #: process corner of every calibration
    mc: int | None = None                        #: Monte Carlo samples per block (None: 24 quick, 200 full)
    seed: int = 2024                             #: root seed of every calibration and of the recall workload
    k: int = 5                                   #: keys kept per query row in the recall workload
    recall_queries: int = 64                     #: query rows of the recall workload
    recall_chips: int = 3                        #: chip instances whose recall is averaged
    workers: int = field(default=2, compare=False)  #: local SPICE worker processes per calibration

    def validated(self):
        """(base design, [point designs], [point value tuples]) or :class:`SweepError` naming the problem."""
        from topkima.circuits.design import DesignError, load_design
        if not self.varies:
            raise SweepError("give at least one --vary FIELD=V1,V2,… (e.g. --vary read_port.l_m=240e-9,480e-9)")
        names = [name for name, _ in self.varies]
        if len(set(names)) != len(names):
            raise SweepError(f"--vary names a field twice: {', '.join(names)}")
        for name, values in self.varies:
            if not values:
                raise SweepError(f"--vary {name}: give at least one value")
        for what, v, lo in (("--k", self.k, 1), ("--recall-queries", self.recall_queries, 1),
                            ("--recall-chips", self.recall_chips, 1), ("--seed", self.seed, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise SweepError(f"{what} must be an integer ≥ {lo}, got {v!r}")
        try:
            base = load_design(self.design)
            combos = list(itertools.product(*[values for _, values in self.varies]))
            designs = []
            for combo in combos:
                d = base
                for name, value in zip(names, combo):
                    d = d.changed(name, value)
                designs.append(d)
        except DesignError as exc:
            raise SweepError(str(exc)) from None
        return base, designs, combos


def parse_vary(text: str) -> tuple[str, tuple[float, ...]]:
    """``FIELD=V1,V2,…`` → (field, values); numbers only (a value reaches netlists)."""
    name, eq, rest = text.partition("=")
    if not eq or not name or not rest:
        raise SweepError(f"--vary {text!r}: write FIELD=V1,V2,… (e.g. read_port.l_m=240e-9,480e-9)")
    values = []
    for item in rest.split(","):
        try:
            value = float(item)
        except ValueError:
            raise SweepError(f"--vary {name}: {item!r} is not a number") from None
        if not np.isfinite(value):
            raise SweepError(f"--vary {name}: {item!r} is not finite")
        values.append(int(value) if value.is_integer() and "." not in item and "e" not in item.lower() else value)
    return name.strip(), tuple(values)


def point_id(index: int, design) -> str:
    return f"p{index:03d}-{design.sha256()[:10]}"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- one point

def topk_recall(calibration, cfg: SweepConfig) -> float:
    """Mean top-k recall against the exact digital top-k of ``cfg.recall_chips`` chips on a fixed workload.

    The workload [ours, as the Monte Carlo study's]: ``recall_queries`` rows of signed inputs uniform
    in −12 … 12 and 256 key columns of 64 levels uniform in −7 … 7 (d = the design's key elements if fewer;
    256 keys spread over its arrays if it has fewer columns), from the sweep's seed; the ADC
    window is chosen on the exact integer scores (as a chip is set up) for each point's artefact.
    Chip instances come from fixed streams, so every point draws the same standard-normal numbers,
    scaled by its own artefact's σ's.
    """
    from topkima.behavioral import TopkimaMacro, choose_adc_range
    from topkima.studies.montecarlo.metrics import exact_topk, recall_precision

    def stream(purpose: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(zlib.crc32(purpose.encode()),)))

    d = min(64, int(calibration.column["geometry"]["n_elements"]))   # fewer key elements per column: shorter keys
    rng = stream("sweep.workload")
    q = rng.integers(-12, 13, (cfg.recall_queries, d))
    keys = rng.integers(-7, 8, (d, 256))
    window, scale = choose_adc_range(q @ keys, cfg.k)
    q_codes = np.clip(np.rint(q * scale), -31, 31).astype(np.int64)
    exact = exact_topk(q_codes @ keys, cfg.k)
    macro = TopkimaMacro(calibration, adc_range=window)    # the point's own array (its design's columns)
    recalls = []
    for chip in range(cfg.recall_chips):
        instance = macro.instance(stream(f"sweep.chip{chip}"))
        result = instance.topk(q_codes, keys, k=cfg.k, rng=stream(f"sweep.noise{chip}"))
        recalls.append(recall_precision(result.indices, exact)[0])
    return float(np.mean(recalls))


def point_figures(calibration, cfg: SweepConfig) -> dict:
    """The key figures of one calibrated point (module docstring)."""
    col, ramp, comp, dig = calibration.column, calibration.ramp, calibration.comparator, calibration.digital
    step = col["unit_step_vs_v_rbl"]
    energy = col["energy"]
    e_bitlines = float(np.interp(0.5, energy["activity"], energy["e_conversion_j"]))
    return {
        "unit_step_v": float(step["dv_per_unit_v"][1]), "unit_step_at_v_rbl_v": float(step["v_rbl_v"][1]),
        "cell_sigma_rel": float(np.interp(0.4, col["mismatch"]["v_rbl_v"][::-1], col["mismatch"]["i_on_sigma_rel"][::-1])),
        "lsb_v": float(ramp["lsb_v"]),
        "inl_max_abs_lsb": float(max(abs(x) for x in ramp["inl_lsb"])),
        "dnl_max_abs_lsb": float(max(abs(x) for x in ramp["dnl_lsb"])),
        "sa_offset_sigma_v": float(comp["offset_sigma_v"]),
        "e_conversion_j": e_bitlines + col["timing"]["n_ramp_steps"] * float(comp["e_per_decision_j"]),
        "t_arb_s": float(dig["t_arb_total_s"]),
        "topk_recall": topk_recall(calibration, cfg),
    }


def run_point(cfg_json: dict, design_json: dict, out_dir: str, cache_dir: str, workers: int) -> dict:
    """Calibrate one point and return its figures (a module-level function: it also runs on Dask)."""
    from topkima.calibration import load_calibration
    from topkima.calibration.calibrate import run_calibration
    from topkima.circuits.design import design_from_dict
    from topkima.circuits.settings import CalSettings
    cfg = SweepConfig(**{**cfg_json, "varies": tuple((n, tuple(v)) for n, v in cfg_json["varies"])})
    design = design_from_dict(design_json, source="sweep point")
    settings = CalSettings(quick=cfg.quick, corner_name=cfg.corner, mc=cfg.mc, seed=cfg.seed, design=design)
    path = Path(out_dir) / "calibration.json"
    started = time.monotonic()
    run_calibration(settings, path, workers=workers, cache_dir=cache_dir,
                    command_line=f"topkima sweep (point {Path(out_dir).name})")
    figures = point_figures(load_calibration(path), cfg)
    return {"figures": figures, "calibration_s": round(time.monotonic() - started, 1)}


# --------------------------------------------------------------------------- the sweep

def _config_json(cfg: SweepConfig) -> dict:
    return {"design": cfg.design, "varies": [[n, list(v)] for n, v in cfg.varies], "quick": cfg.quick,
            "corner": cfg.corner, "mc": cfg.mc, "seed": cfg.seed, "k": cfg.k, "recall_queries": cfg.recall_queries,
            "recall_chips": cfg.recall_chips}


def run_sweep(out_dir: str | Path, cfg: SweepConfig, *, scheduler: str | None = None,
              scheduler_timeout_s: float = 5.0, log=print) -> dict:
    """Run (or resume) a sweep; write ``summary.json`` and the plots; return the summary."""
    from topkima.circuits.jobs import Progress
    base, designs, combos = cfg.validated()
    out = Path(out_dir)
    names = [name for name, _ in cfg.varies]
    cfg_json = _config_json(cfg)
    points = []
    for i, (design, combo) in enumerate(zip(designs, combos)):
        pid = point_id(i, design)
        points.append({"id": pid, "values": dict(zip(names, combo)), "design_sha256": design.sha256(),
                       "design": design, "dir": out / "points" / pid})
    started = time.monotonic()
    done = {}
    for p in points:
        r = _read_json(p["dir"] / "result.json")
        if r is not None and r.get("design_sha256") == p["design_sha256"] and r.get("config") == cfg_json:
            done[p["id"]] = r
    progress = Progress(len(points), log, what="points", prefix="sweep: ", already=len(done), every_s=0.0)

    def store(pid: str, result: dict) -> None:
        p = next(x for x in points if x["id"] == pid)
        entry = {"id": pid, "values": p["values"], "design_sha256": p["design_sha256"], "config": cfg_json, **result}
        write_json_atomic(p["dir"] / "result.json", entry)
        done[pid] = entry

    todo = [p for p in points if p["id"] not in done]
    cache = str(out / "cache")
    if scheduler is None:
        for p in todo:
            log(f"sweep: point {p['id']} " + ", ".join(f"{k} = {v:g}" for k, v in p["values"].items()))
            store(p["id"], run_point(cfg_json, p["design"].to_dict(), str(p["dir"]), cache, cfg.workers))
            progress.step(p["id"])
    elif todo:
        from topkima.studies.montecarlo.config import StudyError
        from topkima.studies.montecarlo.execution import connect, run_tasks
        try:
            client = connect(scheduler, scheduler_timeout_s)
        except StudyError as exc:
            raise SweepError(str(exc)) from None
        try:
            tasks = [(p["id"], run_point, (cfg_json, p["design"].to_dict(), str(p["dir"].resolve()),
                                           str(Path(cache).resolve()), 0)) for p in todo]
            run_tasks(tasks, store, workers=0, client=client, progress=progress)
        finally:
            client.close()
    rows = [done[p["id"]] for p in points]
    summary = {"config": cfg_json, "base_design": base.name, "base_design_sha256": base.sha256(),
               "varied": names, "figures": {k: FIGURES[k] for k in FIGURES},
               "points": [{"id": r["id"], **{f"value:{k}": v for k, v in r["values"].items()}, **r["figures"],
                           "calibration_s": r.get("calibration_s")} for r in rows],
               "wall_time_s": round(time.monotonic() - started, 1),
               "execution": {"scheduler": scheduler, "points_resumed": len(points) - len(todo)}}
    summary["plots"] = write_plots(out / "plots", summary)
    write_json_atomic(out / "summary.json", summary)
    return summary


def write_plots(folder: Path, summary: dict) -> list[str]:
    """One PNG per figure against the first varied field, a line per combination of the others."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from topkima.studies.outputs import save_figure_atomic
    names, rows = summary["varied"], summary["points"]
    x_name, others = names[0], names[1:]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[f"value:{n}"] for n in others), []).append(r)
    files = []
    for fig_name, unit in FIGURES.items():
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for key, group in groups.items():
            group = sorted(group, key=lambda r: r[f"value:{x_name}"])
            label = ", ".join(f"{n} = {v:g}" for n, v in zip(others, key)) or None
            ax.plot([r[f"value:{x_name}"] for r in group], [r[fig_name] for r in group], "o-", label=label)
        ax.set_xlabel(x_name)
        ax.set_ylabel(f"{fig_name} ({unit})" if unit else fig_name)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{fig_name}.png"
        save_figure_atomic(fig, path, close=True, dpi=110)
        files.append(str(Path("plots") / path.name))
    return files
