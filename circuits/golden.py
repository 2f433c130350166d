"""Golden end-to-end SPICE conversions for the behavioural model's tests.

Groups of columns that share one query (the wordline pulses) as in the macro, each column
with its own keys and its own mismatch instance (every read port, replica cell and
sense-amplifier device drawn from Pelgrom), converted at transistor level: MAC phase,
calibration phase, ramp, sense amplifier. The file keeps the exact per-device draws, so
the behavioural model can be evaluated on the same instances.

Inputs are drawn with the statistics the ADC window is set for [ours]: half the query
elements non-zero with |q| ≤ 12, keys uniform in −4…4, so that a group's top scores
fall in the default window (0 … 128 units: 32 calibration cells × 4 units, 4 units/step).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import comparator
from topkima.circuits.jobs import Job

BLOCK = "golden"
NETLISTS = col.NETLISTS + comparator.NETLISTS
FORMAT_VERSION = 1
RANGE = {"n_cal": 32, "t_cal_units": 4, "t_ramp_units": 4}


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
            jobs.append(Job(BLOCK, label, "topkima.circuits.column:measure_conversion",
                            dict(base, keys=keys, inputs=inputs, draws=draws), NETLISTS))
        groups.append(group)
    return jobs, groups


def _rounded(draws: dict) -> dict:
    """Draws rounded to 0.1 µV: what is stored is exactly what was simulated."""
    r = lambda a: np.round(np.asarray(a, float), 7).tolist()  # noqa: E731
    return {"mac_dvt_v": r(draws["mac_dvt_v"]), "cal_dvt_v": r(draws["cal_dvt_v"]),
            "ramp_dvt_v": r(draws["ramp_dvt_v"]),
            "sa_dvt_v": {k: round(float(v), 7) for k, v in draws["sa_dvt_v"].items()}}


def assemble(settings, groups: list[dict], results: dict, provenance: dict) -> dict:
    """The golden document: groups, columns with draws, SPICE codes and bitline voltages."""
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
    return {"format_version": FORMAT_VERSION, "provenance": provenance, "range": RANGE,
            "corner": settings.corner_name, "supplies": settings.supplies.as_dict(), "seed": settings.seed,
            "draws_layout": col.ColumnDraws.__doc__.strip(), "groups": out_groups}
