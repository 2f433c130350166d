"""Compare the behavioural macro with golden end-to-end SPICE conversions (`topkima golden`).

Each golden group is columns sharing one query; every column carries its exact device
draws. The behavioural chip gets the same draws (no comparator noise: ngspice transients
are noiseless) and converts the same query, so codes, firing cycles and top-k sets can be
compared one to one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topkima.behavioral.macro import TopkimaMacro, select_topk


@dataclass
class GoldenAgreement:
    n_conversions: int
    exact_fraction: float           #: behavioural code == SPICE code
    within_one_fraction: float      #: |difference| ≤ 1 LSB
    max_abs_code_diff: int
    n_groups: int
    topk_identical_fraction: float  #: groups whose top-k sets (k = k_top) are identical
    k_top: int
    spice_codes: np.ndarray
    model_codes: np.ndarray

    def lines(self) -> list[str]:
        return [f"golden SPICE conversions: {self.n_conversions} in {self.n_groups} groups",
                f"  codes exactly equal: {100 * self.exact_fraction:.1f} %",
                f"  codes within ±1 LSB: {100 * self.within_one_fraction:.1f} % (max |Δ| = {self.max_abs_code_diff})",
                f"  top-{self.k_top} sets identical: {100 * self.topk_identical_fraction:.1f} % of groups"]


def load_golden(path: str | Path) -> dict:
    data = json.loads(Path(path).read_text())
    if data.get("format_version") != 1 or "groups" not in data:
        raise ValueError(f"{path}: not a golden-conversion file of format 1")
    return data


def compare(macro: TopkimaMacro, golden: dict, k_top: int = 5) -> GoldenAgreement:
    rng_settings = golden["range"]
    p = macro.params
    if (p.n_cal, p.t_cal_units, p.t_ramp_units) != (rng_settings["n_cal"], rng_settings["t_cal_units"],
                                                    rng_settings["t_ramp_units"]):
        raise ValueError("the golden file and the artefact use different ADC range settings")
    n_steps = p.n_ramp_steps
    spice, model, same_sets = [], [], []
    for group in golden["groups"]:
        cols = group["columns"]
        draws = macro.tile_draws_from_columns([c["draws"] for c in cols])
        chip = macro.instance_from_draws([draws], noise=False)
        q = np.asarray(group["inputs"])[None, :]
        kl = np.array([c["keys"] for c in cols]).T
        res = chip.topk(q, kl, k=min(k_top, len(cols)))
        fc = res.firing_cycle[0]
        model_codes = np.where(fc <= n_steps, n_steps - fc, 0)
        spice_fc = np.array([c["firing_cycle"] if c["firing_cycle"] is not None else n_steps + 1 for c in cols])
        spice.append([c["code"] for c in cols])
        model.append(model_codes)
        spice_sel, _, _ = select_topk(spice_fc[None, :], min(k_top, len(cols)), n_steps)
        same_sets.append(set(spice_sel[0][spice_sel[0] >= 0]) == set(res.indices[0][res.indices[0] >= 0]))
    s, m = np.concatenate(spice), np.concatenate(model)
    diff = np.abs(s - m)
    return GoldenAgreement(n_conversions=int(s.size), exact_fraction=float(np.mean(diff == 0)),
                           within_one_fraction=float(np.mean(diff <= 1)), max_abs_code_diff=int(diff.max()),
                           n_groups=len(same_sets), topk_identical_fraction=float(np.mean(same_sets)),
                           k_top=k_top, spice_codes=s, model_codes=m)
