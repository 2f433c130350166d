"""Golden end-to-end SPICE conversions for the behavioural model's tests.

Groups of columns that share one query (the wordline pulses) as in the macro, each column
with its own keys and its own mismatch instance (every read port, replica cell and
sense-amplifier device drawn from Pelgrom), converted at transistor level: MAC phase,
calibration phase, ramp, sense amplifier. The file keeps the exact per-device draws, so
the behavioural model can be evaluated on the same instances.

The sets (:data:`SETS`). The development set (``plan``, tests/golden/column_conversions.json) draws
inputs with the statistics the ADC window is set for [ours]: half the query elements
non-zero with |q| ≤ 12, keys uniform in −4…4, so that a group's top scores fall in the
default window (0 … 128 units: 32 calibration cells × 4 units, 4 units/step); most of its
columns score below the window and never fire. The held-out set (``plan_heldout``,
tests/golden/heldout_conversions.json) draws the same queries from its own seed stream
and, per column, a target code spread evenly over 1…30 and keys uniform in −4…4
*conditioned on* the ideal score landing on that code (rejection sampling), so its
conversions exercise the whole window. It is never used to choose or fit anything. The
``ss`` set (tests/golden/ss_conversions.json) is the held-out plan again, at the ``ss``
corner and from a seed stream of its own ("golden-heldout-ss"): the off-nominal check of an
artefact calibrated at ``ss`` (and of the ``tt`` artefact used there). Also never fitted to.
The ``fit`` set (calibration/fit_conversions.json) is the held-out plan from a seed stream of its
own ("golden-fit"): in-range SPICE conversions that model refinements may be fitted to, so that
the held-out sets stay held out. The ``error-budget`` set is a diagnosis (:data:`ERROR_BUDGET_VARIANTS`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import comparator
from topkima.circuits import timing as tm
from topkima.circuits.jobs import Job

BLOCK = "golden"
NETLISTS = col.NETLISTS + comparator.NETLISTS
FORMAT_VERSION = 1
RANGE = {"n_cal": 32, "t_cal_units": 4, "t_ramp_units": 4}
HELDOUT_PURPOSE = "held-out evaluation: never used to choose or fit anything"
FIT_PURPOSE = "fitting data for model refinements: not a held-out set, not evidence of fidelity"
HELDOUT_CODES = (1, 30)   #: target codes of the held-out set: inside the window, neither saturated nor unfired
Q_MAX, K_MAX = 12, 4      #: input and key magnitudes of every set [ours]


@dataclass(frozen=True)
class GoldenSet:
    """One golden set: how it is planned, at which corner, and where it is stored."""

    name: str
    corner_name: str        #: process corner of every conversion (circuits.corners)
    held_out: bool          #: never used to choose or fit anything
    stream: str             #: seed-stream purpose (CalSettings.rng); a new stream = new seeds
    label_prefix: str       #: column labels are f"{prefix}{group:03d}_c{column:02d}"
    default_groups: int     #: groups of 16 columns by default
    path: str               #: the committed file, relative to the repository root


SETS: dict[str, GoldenSet] = {s.name: s for s in (
    GoldenSet("development", "tt", False, "golden", "g", 4, "tests/golden/column_conversions.json"),
    GoldenSet("heldout", "tt", True, "golden-heldout", "h", 17, "tests/golden/heldout_conversions.json"),
    # a second held-out set, new seeds (issue 17): generated before any model change it evaluates
    GoldenSet("heldout-2", "tt", True, "golden-heldout-2", "j", 17, "tests/golden/heldout2_conversions.json"),
    # a third, sealed until the next model change is fixed on fitting data (docs/behavioral-model.md,
    # "The third held-out set"): its SPICE run made 2026-12-06 (69e4a62) with no model change pending
    GoldenSet("heldout-3", "tt", True, "golden-heldout-3", "m", 17, "tests/golden/heldout3_conversions.json"),
    # 6 × 16 = 96 planned inside the window, so that ≥ 64 stay inside it in SPICE at ss [ours]
    GoldenSet("ss", "ss", True, "golden-heldout-ss", "s", 6, "tests/golden/ss_conversions.json"),
    # groups of 5: one column instance with each device group's mismatch alone (ERROR_BUDGET_VARIANTS)
    GoldenSet("error-budget", "tt", True, "error-budget", "b", 12, "tests/golden/error_budget_conversions.json"),
    # in-range conversions to fit model refinements to (issue 17): neither golden set, no evidence of fidelity
    GoldenSet("fit", "tt", False, "golden-fit", "f", 6, "calibration/fit_conversions.json"),
    # the fit set's plan with every device nominal, from a stream of its own: the nominal model's own error
    GoldenSet("fit-nominal", "tt", False, "golden-fit-nominal", "n", 3, "calibration/fit_nominal_conversions.json"),
)}

#: the error-budget set's columns per group: which device group keeps its mismatch draw
#: (none: every device nominal); the others are nominal
ERROR_BUDGET_VARIANTS = {"none": None, "cal": "cal_dvt_v", "ramp": "ramp_dvt_v", "mac": "mac_dvt_v", "sa": "sa_dvt_v"}
ERROR_BUDGET_PURPOSE = ("diagnosis: what each device group's mismatch adds to the model's error; never used to "
                        "choose or fit anything")


def golden_set(name: str) -> GoldenSet:
    try:
        return SETS[name]
    except KeyError:
        raise ValueError(f"unknown golden set {name!r}; choose one of {', '.join(SETS)}") from None


def plan(settings, n_groups: int, columns_per_group: int = 16) -> tuple[list[Job], list[dict]]:
    """Jobs (one per column) and the group descriptions they belong to."""
    rng = settings.rng("golden")
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(), **RANGE}
    jobs, groups = [], []
    for g in range(n_groups):
        _, inputs = col.random_vectors(rng, 0.5, q_max=12, k_max=4)
        group = {"inputs": inputs, "columns": []}
        for c in range(columns_per_group):
            keys = [int(x) for x in rng.integers(-4, 5, col.N_ELEMENTS)]
            draws = col.ColumnDraws.draw(rng, comparator.DEVICES).to_json()
            draws = _rounded(draws)
            label = f"g{g:03d}_c{c:02d}"
            group["columns"].append({"label": label, "keys": keys, "draws": draws})
            jobs.append(Job(BLOCK, label, "topkima.circuits.column_measure:measure_conversion",
                            dict(base, keys=keys, inputs=inputs, draws=draws), NETLISTS))
        groups.append(group)
    return jobs, groups


def ideal_code(score_units: int, n_cal: int = RANGE["n_cal"], t_cal_units: int = RANGE["t_cal_units"],
               t_ramp_units: int = RANGE["t_ramp_units"]) -> int:
    """The code of an ideal column (equal, linear cells; no mismatch or offset) with MAC value ``score_units``.

    By ramp cycle j, RBL_L has taken P + j·t_ramp_units units and RBL_R N + n_cal·t_cal_units,
    so the column fires at the first j with score + j·lsb > top (a tie does not fire);
    code = 32 − j, and 0 when it never fires (column.code_from_cycle).
    """
    top, lsb = n_cal * t_cal_units, t_ramp_units
    cycle = max(1, (top - int(score_units)) // lsb + 1)
    return col.code_from_cycle(cycle if cycle <= tm.active().n_ramp_steps else None)


def score_bounds(code: int, n_cal: int = RANGE["n_cal"], t_cal_units: int = RANGE["t_cal_units"],
                 t_ramp_units: int = RANGE["t_ramp_units"]) -> tuple[int, int]:
    """The MAC values (lo, hi inclusive) whose ideal code is ``code`` (1…30: one LSB of scores)."""
    if not 1 <= code <= tm.active().n_ramp_steps - 2:
        raise ValueError(f"code {code} is not strictly inside the window (1…{tm.active().n_ramp_steps - 2})")
    hi = n_cal * t_cal_units - t_ramp_units * (tm.active().n_ramp_steps - 1 - code)
    return hi - t_ramp_units + 1, hi


def keys_with_score(rng: np.random.Generator, inputs: list[int], score_units: int, k_max: int = K_MAX,
                    batch: int = 2048, max_batches: int = 1000) -> list[int]:
    """Keys uniform in −k_max…k_max conditioned on Σ q·k = ``score_units`` (rejection sampling)."""
    q = np.asarray(inputs, dtype=np.int64)
    for _ in range(max_batches):
        keys = rng.integers(-k_max, k_max + 1, (batch, col.N_ELEMENTS))
        hits = np.flatnonzero(keys @ q == score_units)
        if hits.size:
            return [int(x) for x in keys[hits[0]]]
    raise ValueError(f"no keys in ±{k_max} reach the score {score_units} for this query")


def plan_heldout(settings, n_groups: int, columns_per_group: int = 16, stream: str = "golden-heldout",
                 label_prefix: str = "h") -> tuple[list[Job], list[dict]]:
    """A held-out set's jobs and groups: target codes spread evenly over HELDOUT_CODES.

    One seed stream (purpose ``stream``, independent of the development set's), drawn
    in order group by group and column by column, so a smaller plan is a prefix of a larger
    one (a trial run's conversions are reused from the cache). Target codes come in shuffled
    rounds of every code in HELDOUT_CODES; each column's target score is uniform over the
    scores of its code (one of them a tie at the previous ramp step, as in real data).
    """
    rng = settings.rng(stream)
    codes = np.arange(HELDOUT_CODES[0], HELDOUT_CODES[1] + 1)
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(), **RANGE}
    jobs, groups, round_ = [], [], []
    for g in range(n_groups):
        _, inputs = col.random_vectors(rng, 0.5, q_max=Q_MAX, k_max=K_MAX)
        group = {"inputs": inputs, "columns": []}
        for c in range(columns_per_group):
            if not round_:
                round_ = [int(x) for x in rng.permutation(codes)]
            target = round_.pop()
            lo, hi = score_bounds(target)
            score = int(rng.integers(lo, hi + 1))
            keys = keys_with_score(rng, inputs, score)
            draws = _rounded(col.ColumnDraws.draw(rng, comparator.DEVICES).to_json())
            label = f"{label_prefix}{g:03d}_c{c:02d}"
            group["columns"].append({"label": label, "keys": keys, "target_code": target, "draws": draws})
            jobs.append(Job(BLOCK, label, "topkima.circuits.column_measure:measure_conversion",
                            dict(base, keys=keys, inputs=inputs, draws=draws), NETLISTS))
        groups.append(group)
    return jobs, groups


def plan_error_budget(settings, n_groups: int, stream: str = "error-budget",
                      label_prefix: str = "b") -> tuple[list[Job], list[dict]]:
    """The error-budget set: per group one query, one key vector scoring a target code over
    HELDOUT_CODES (as the held-out set draws them) and one full draw of the column's devices,
    converted once per :data:`ERROR_BUDGET_VARIANTS` entry with only that device group's
    draw kept (the rest nominal). Comparing the model with SPICE column by column then splits
    its error by device group. Its own seed stream; never used to choose or fit anything."""
    rng = settings.rng(stream)
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(), **RANGE}
    jobs, groups = [], []
    for g in range(n_groups):
        _, inputs = col.random_vectors(rng, 0.5, q_max=Q_MAX, k_max=K_MAX)
        target = int(rng.integers(HELDOUT_CODES[0], HELDOUT_CODES[1] + 1))
        lo, hi = score_bounds(target)
        keys = keys_with_score(rng, inputs, int(rng.integers(lo, hi + 1)))
        full = _rounded(col.ColumnDraws.draw(rng, comparator.DEVICES).to_json())
        nominal = _rounded(col.ColumnDraws(sa_dvt_v={name: 0.0 for name in full["sa_dvt_v"]}).to_json())
        group = {"inputs": inputs, "columns": []}
        for variant, field in ERROR_BUDGET_VARIANTS.items():
            draws = dict(nominal, **({field: full[field]} if field else {}))
            label = f"{label_prefix}{g:03d}_{variant}"
            group["columns"].append({"label": label, "variant": variant, "keys": keys, "target_code": target,
                                     "draws": draws})
            jobs.append(Job(BLOCK, label, "topkima.circuits.column_measure:measure_conversion",
                            dict(base, keys=keys, inputs=inputs, draws=draws), NETLISTS))
        groups.append(group)
    return jobs, groups


def plan_nominal(settings, n_groups: int, columns_per_group: int, stream: str,
                 label_prefix: str) -> tuple[list[Job], list[dict]]:
    """The held-out plan's inputs and keys from seed stream ``stream``, converted with every device
    nominal (the fit-nominal set): the behavioural model's own error, apart from any mismatch."""
    jobs, groups = plan_heldout(settings, n_groups, columns_per_group, stream, label_prefix)
    for group in groups:
        for c in group["columns"]:
            c["draws"] = _rounded(col.ColumnDraws(sa_dvt_v={name: 0.0 for name in c["draws"]["sa_dvt_v"]}).to_json())
    draws = {c["label"]: c["draws"] for group in groups for c in group["columns"]}
    return [Job(j.block, j.label, j.fn, dict(j.kwargs, draws=draws[j.label]), j.netlists) for j in jobs], groups


def _rounded(draws: dict) -> dict:
    """Draws rounded to 0.1 µV: what is stored is exactly what was simulated."""
    r = lambda a: np.round(np.asarray(a, float), 7).tolist()  # noqa: E731
    return {"mac_dvt_v": r(draws["mac_dvt_v"]), "cal_dvt_v": r(draws["cal_dvt_v"]),
            "ramp_dvt_v": r(draws["ramp_dvt_v"]),
            "sa_dvt_v": {k: round(float(v), 7) for k, v in draws["sa_dvt_v"].items()}}


def plan_set(gset: GoldenSet, settings, n_groups: int, columns_per_group: int = 16) -> tuple[list[Job], list[dict]]:
    """The jobs and groups of golden set ``gset`` (its corner must be the settings')."""
    if settings.corner_name != gset.corner_name:
        raise ValueError(f"golden set {gset.name!r} is made at corner {gset.corner_name}, not {settings.corner_name}")
    if gset.name == "fit":      # the held-out plan (codes over the window) from the fit set's own stream
        return plan_heldout(settings, n_groups, columns_per_group, gset.stream, gset.label_prefix)
    if gset.name == "fit-nominal":
        return plan_nominal(settings, n_groups, columns_per_group, gset.stream, gset.label_prefix)
    if not gset.held_out:
        return plan(settings, n_groups, columns_per_group)
    if gset.name == "error-budget":
        return plan_error_budget(settings, n_groups, gset.stream, gset.label_prefix)
    return plan_heldout(settings, n_groups, columns_per_group, gset.stream, gset.label_prefix)


def assemble(settings, groups: list[dict], results: dict, provenance: dict, held_out: bool = False,
             set_name: str | None = None) -> dict:
    """The golden document: groups, columns with draws, SPICE codes and bitline voltages.

    ``held_out``: the document says it is a held-out set, which is never fitted to;
    ``set_name``: its name in :data:`SETS` (default "heldout" or "development").
    """
    out_groups = []
    for group in groups:
        cols = []
        for c in group["columns"]:
            r = results[c["label"]]
            cols.append({**c, "mac_units": r["mac_units"], "p_units": r["p_units"], "n_units": r["n_units"],
                         "firing_cycle": r["firing_cycle"], "code": r["code"],
                         "v_rbl_l_at_sa_clk_v": r["v_rbl_l_at_sa_clk_v"],
                         "v_rbl_r_at_sa_clk_v": r["v_rbl_r_at_sa_clk_v"],
                         "e_bitline_j": r["e_bitline_j"], "e_sa_32_decisions_j": r["e_sa_32_decisions_j"]})
        out_groups.append({"inputs": group["inputs"], "columns": cols})
    name = set_name or ("heldout" if held_out else "development")
    head = {"format_version": FORMAT_VERSION, "set": name, "held_out": held_out}
    if name == "error-budget":
        provenance = {**provenance, "purpose": ERROR_BUDGET_PURPOSE}
        head.update(purpose=ERROR_BUDGET_PURPOSE, note=(
            "Error-budget set: each group is one column instance converted once per device group "
            f"({', '.join(ERROR_BUDGET_VARIANTS)}), with only that group's mismatch draw (none: all nominal); "
            f"own seed stream ('{SETS[name].stream}'), target codes over {HELDOUT_CODES[0]}…{HELDOUT_CODES[1]}. "
            "A diagnosis of where the model's error comes from: never use it to choose, tune or fit anything."))
    elif name in ("fit", "fit-nominal"):
        provenance = {**provenance, "purpose": FIT_PURPOSE}
        head.update(purpose=FIT_PURPOSE, note=(
            f"Fitting set: the held-out plan (target codes over {HELDOUT_CODES[0]}…{HELDOUT_CODES[1]}) from its own "
            f"seed stream ('{SETS[name].stream}'){', every device nominal' if name == 'fit-nominal' else ''}. "
            "Model refinements are fitted to it; agreement on it is not "
            "evidence of fidelity (report the held-out sets for that)."))
    elif held_out:
        provenance = {**provenance, "purpose": HELDOUT_PURPOSE}
        head.update(purpose=HELDOUT_PURPOSE, note=(
            f"Held-out golden set at corner {settings.corner_name}: new seed stream (purpose "
            f"'{SETS[name].stream}'), target codes spread over "
            f"{HELDOUT_CODES[0]}…{HELDOUT_CODES[1]}. Never use it to choose, tune or fit anything (model "
            "parameters, thresholds, tolerances); report agreement on it only. Development work uses "
            "column_conversions.json."))
    return {**head, "provenance": provenance, "range": RANGE,
            "corner": settings.corner_name, "supplies": settings.supplies.as_dict(), "seed": settings.seed,
            "draws_layout": col.ColumnDraws.__doc__.strip(), "groups": out_groups}
