"""Compare the behavioural macro with golden end-to-end SPICE conversions (`topkima golden`).

Each golden group is columns sharing one query; every column carries its exact device
draws. The behavioural chip gets the same draws (no comparator noise: ngspice transients
are noiseless) and converts the same query, so codes, firing cycles and top-k sets can be
compared one to one. The golden file and the artefact each name their process corner; the
report names both, so a cross-corner comparison (e.g. the ``tt`` artefact on ``ss``
conversions) is visible as such.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topkima.behavioral.macro import TopkimaMacro, select_topk
from topkima.behavioral.macro.energy import latency_s


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
    energy_rel_err: np.ndarray | None = None   #: per column: (model − SPICE)/SPICE, bitlines + 32 SA decisions
    latency_rel_err: np.ndarray | None = None  #: per group: top-k latency, model vs SPICE firing cycles
    golden_set: str = "development"            #: the golden file's set: development, heldout or ss
    held_out: bool = False                     #: the golden set is never used to choose or fit anything
    golden_corner: str = "tt"                  #: process corner of the SPICE conversions
    artefact_corner: str = "tt"                #: process corner the model's artefact was calibrated at

    def regions(self) -> dict[str, dict]:
        """Agreement by the SPICE code's region of the ADC window.

        ``in_range``: codes 1…30; ``saturated``: 31 (fired in ramp cycle 1, above the window);
        ``never_fired``: 0 (below the window, or firing only in the last cycle). Percentages;
        ``None`` where a region is empty or its energies were not measured.
        """
        n_steps = 32   # the golden testbench's ramp steps (codes 0…31)
        masks = {"in_range": (self.spice_codes >= 1) & (self.spice_codes <= n_steps - 2),
                 "saturated": self.spice_codes == n_steps - 1, "never_fired": self.spice_codes == 0}
        diff = np.abs(self.spice_codes - self.model_codes)
        out = {}
        for name, mask in masks.items():
            n = int(mask.sum())
            e = None if self.energy_rel_err is None or n == 0 else np.abs(self.energy_rel_err[mask])
            out[name] = {"n": n,
                         "exact_pct": _pct(np.mean(diff[mask] == 0)) if n else None,
                         "within_1_lsb_pct": _pct(np.mean(diff[mask] <= 1)) if n else None,
                         "max_abs_code_diff": int(diff[mask].max()) if n else None,
                         "energy_mean_err_pct": _pct(e.mean()) if e is not None else None,
                         "energy_max_err_pct": _pct(e.max()) if e is not None else None}
        return out

    def to_json(self) -> dict:
        """The agreement as one JSON-able object (``topkima compare-golden --json``)."""
        e = None if self.energy_rel_err is None else np.abs(self.energy_rel_err)
        lat = None if self.latency_rel_err is None else np.abs(self.latency_rel_err)
        return {"set": self.golden_set, "held_out": self.held_out,
                "golden_corner": self.golden_corner, "artefact_corner": self.artefact_corner,
                "n_conversions": self.n_conversions, "n_groups": self.n_groups,
                "exact_pct": _pct(self.exact_fraction), "within_1_lsb_pct": _pct(self.within_one_fraction),
                "max_abs_code_diff": self.max_abs_code_diff, "k_top": self.k_top,
                "topk_identical_pct": _pct(self.topk_identical_fraction),
                "energy_mean_err_pct": _pct(e.mean()) if e is not None else None,
                "energy_max_err_pct": _pct(e.max()) if e is not None else None,
                "latency_mean_err_pct": _pct(lat.mean()) if lat is not None else None,
                "latency_max_err_pct": _pct(lat.max()) if lat is not None else None,
                "regions": self.regions()}

    def lines(self) -> list[str]:
        same = self.golden_corner == self.artefact_corner
        out = [f"golden SPICE conversions ({self.golden_set} set, corner {self.golden_corner}): {self.n_conversions} "
               f"in {self.n_groups} groups; model artefact at corner {self.artefact_corner}"
               + ("" if same else " (cross-corner: the artefact was not characterised at the golden set's corner)"),
               f"  codes exactly equal: {100 * self.exact_fraction:.1f} %",
               f"  codes within ±1 LSB: {100 * self.within_one_fraction:.1f} % (max |Δ| = {self.max_abs_code_diff})",
               f"  top-{self.k_top} sets identical: {100 * self.topk_identical_fraction:.1f} % of groups"]
        if self.energy_rel_err is not None:
            e = np.abs(self.energy_rel_err)
            out.append(f"  conversion energy (bitlines + 32 SA decisions): mean |error| {100 * e.mean():.2f} %, "
                       f"max {100 * e.max():.2f} %")
        if self.latency_rel_err is not None:
            lat = np.abs(self.latency_rel_err)
            out.append(f"  top-{self.k_top} latency: mean |error| {100 * lat.mean():.2f} %, max {100 * lat.max():.2f} %")
        out.append("  by SPICE code        n   exact  ±1 LSB  energy mean/max |error|")
        for name, r in self.regions().items():
            label = {"in_range": "in range (1…30)", "saturated": "saturated (31)", "never_fired": "never fired (0)"}[name]
            if not r["n"]:
                out.append(f"  {label:<17s} {0:4d}")
                continue
            energy = ("" if r["energy_mean_err_pct"] is None
                      else f"  {r['energy_mean_err_pct']:.2f} % / {r['energy_max_err_pct']:.2f} %")
            out.append(f"  {label:<17s} {r['n']:4d} {r['exact_pct']:6.1f} % {r['within_1_lsb_pct']:5.1f} %{energy}")
        return out


def _pct(fraction) -> float:
    return round(100 * float(fraction), 2)


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
        raise ValueError(f"the golden file (corner {golden.get('corner', 'tt')}) and the artefact (corner "
                         f"{macro.corner}) use different ADC range settings: n_cal, t_cal_units, t_ramp_units "
                         f"{tuple(rng_settings[k] for k in ('n_cal', 't_cal_units', 't_ramp_units'))} vs "
                         f"{(p.n_cal, p.t_cal_units, p.t_ramp_units)}")
    n_steps = p.n_ramp_steps
    spice, model, same_sets, e_err, lat_err = [], [], [], [], []
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
        spice_sel, _, spice_stop = select_topk(spice_fc[None, :], min(k_top, len(cols)), n_steps)
        same_sets.append(set(spice_sel[0][spice_sel[0] >= 0]) == set(res.indices[0][res.indices[0] >= 0]))
        lat_spice = latency_s(chip.params, spice_stop)
        lat_err.append(float((res.latency_s[0] - lat_spice[0]) / lat_spice[0]))
        if all("e_bitline_j" in c for c in cols):
            e_model = _full_ramp_column_energy(chip, q, kl)
            e_spice = np.array([c["e_bitline_j"] + c["e_sa_32_decisions_j"] for c in cols])
            e_err.extend(((e_model - e_spice) / e_spice).tolist())
        else:
            e_err.extend([np.nan] * len(cols))
    s, m = np.concatenate(spice), np.concatenate(model)
    diff = np.abs(s - m)
    e_err = np.array(e_err)
    return GoldenAgreement(n_conversions=int(s.size), exact_fraction=float(np.mean(diff == 0)),
                           within_one_fraction=float(np.mean(diff <= 1)), max_abs_code_diff=int(diff.max()),
                           n_groups=len(same_sets), topk_identical_fraction=float(np.mean(same_sets)),
                           k_top=k_top, spice_codes=s, model_codes=m,
                           energy_rel_err=None if np.isnan(e_err).any() else e_err, latency_rel_err=np.array(lat_err),
                           golden_set=golden.get("set", "development"), held_out=bool(golden.get("held_out", False)),
                           golden_corner=str(golden.get("corner", "tt")), artefact_corner=macro.corner)


def _full_ramp_column_energy(chip, q: np.ndarray, kl: np.ndarray) -> np.ndarray:
    """Model energy of each column converting over the full ramp with its SA clocked 32 times
    (what the golden testbench does): bitline restore V_pre·C_eff·ΣΔV plus 32 decisions."""
    p = chip.params
    n = kl.shape[1]
    kt = np.concatenate([kl, np.zeros((kl.shape[0], chip.n_cols - n), dtype=kl.dtype)], axis=1)
    u_l, u_r = chip.mac_units(q, kt)
    leak = chip.leak_units_per_unit(kt)
    v_l, v_r = chip.bitline_voltages(u_l, u_r, leak, p.n_ramp_steps)
    v0 = p.curve_v[0]
    e_decisions = 0.0
    for j in range(1, p.n_ramp_steps + 1):
        v_lj, v_rj = chip.bitline_voltages(u_l, u_r, leak, j)
        e_decisions = e_decisions + chip.e_per_decision_j(0.5 * (v_lj + v_rj), v_rj - v_lj)
    e_col = p.v_precharge_v * p.c_bitline_eff_f * ((v0 - v_l) + (v0 - v_r)) + e_decisions
    return e_col[0, :n]


def adc_linearity_lines(macro: TopkimaMacro, rng_seed: int = 0) -> list[str]:
    """The modelled ramp ADC's INL/DNL beside the SPICE ramp block's and the measured reference."""
    ramp = macro.calibration.ramp
    nominal = macro.nominal().ramp_inl_dnl()
    inst = macro.instance(np.random.default_rng(rng_seed)).ramp_inl_dnl()
    sm = ramp["step_mismatch"]
    ref = ramp["reference_measured"]
    med = lambda x: float(np.median(x))  # noqa: E731
    return [
        "ramp ADC INL / DNL (LSB, endpoint fit)   INL max/min      DNL max/min",
        f"  model, nominal cells               {nominal['inl_max_lsb'][0]:+.3f}/{nominal['inl_min_lsb'][0]:+.3f}"
        f"    {nominal['dnl_max_lsb'][0]:+.3f}/{nominal['dnl_min_lsb'][0]:+.3f}",
        f"  SPICE ramp block, nominal          {ramp['inl_max_lsb']:+.3f}/{ramp['inl_min_lsb']:+.3f}"
        f"    {ramp['dnl_max_lsb']:+.3f}/{ramp['dnl_min_lsb']:+.3f}",
        f"  model, 256 columns (median)        {med(inst['inl_max_lsb']):+.3f}/{med(inst['inl_min_lsb']):+.3f}"
        f"    {med(inst['dnl_max_lsb']):+.3f}/{med(inst['dnl_min_lsb']):+.3f}",
        f"  SPICE, {sm['n_instances']} MC instances (median)     {med(sm['inl_spread_max_lsb']):+.3f}/"
        f"{med(sm['inl_spread_min_lsb']):+.3f}    {med(sm['dnl_spread_max_lsb']):+.3f}/{med(sm['dnl_spread_min_lsb']):+.3f}",
        f"  measured, Yu et al. 2022           {ref['inl_max_lsb']:+.3f}/{ref['inl_min_lsb']:+.3f}"
        f"    {ref['dnl_max_lsb']:+.3f}/{ref['dnl_min_lsb']:+.3f}",
    ]


def stop_time_comparison(calibration, doc: dict) -> list[dict]:
    """SPICE time to STOP (``topkima stop-time``) beside the model's, run by run.

    Both from the start of ramp cycle 1: the model's latency (:func:`energy.latency_s`) less
    its PWM phase and calibration clock, i.e. stop cycle × t_clk + t_arb_total, with the stop
    cycle the arbiter gives (:func:`select_topk`) on the firing cycles of the sense amplifiers
    in the same SPICE run, so that both sides time the same events. Also per run: how many of
    those firing cycles equal the golden conversion's own (the replay's fidelity).
    """
    from topkima.behavioral.params import params_from_calibration
    p = params_from_calibration(calibration)
    n_steps = p.n_ramp_steps
    out = []
    for run in doc["runs"]:
        fc = np.array([n_steps + 1 if c is None else c for c in run["sa_first_fire_cycle"]])
        _, _, stop = select_topk(fc[None, :], int(doc["k"]), n_steps)
        seen = lambda c: min(c or n_steps + 1, run["n_cycles"] + 1)  # noqa: E731  (the run simulates n_cycles)
        same = sum(seen(a) == seen(b) for a, b in zip(run["sa_first_fire_cycle"], run["golden_firing_cycles"]))
        stop = int(stop[0])
        t_model = float(latency_s(p, np.array([stop]))[0]) - p.t_pwm_s - p.t_clk_ima_s
        t_spice = run["t_stop_from_ramp_start_s"]
        out.append({"group": run["group"], "n_columns": len(fc), "n_firing_as_golden": int(same),
                    "stop_cycle_model": stop, "stop_cycle_spice": run["stop_cycle_spice"],
                    "t_stop_model_s": t_model, "t_stop_spice_s": t_spice,
                    "t_model_minus_spice_s": None if t_spice is None else t_model - t_spice})
    return out


def stop_time_lines(calibration, doc: dict) -> list[str]:
    """The comparison as text (``topkima stop-time``)."""
    rows = stop_time_comparison(calibration, doc)
    out = [f"time to STOP from ramp start, k = {doc['k']}, {doc['columns_per_run']} columns per run "
           f"(SPICE: SAs → arbiter chain → k-counter; model: stop cycle × t_clk + t_arb_total, artefact corner "
           f"{calibration.corner})",
           "  (stop cycle: the model's arbiter on the run's own SA firing cycles; 'as golden': columns whose SA "
           "fired in the cycle of their full-column conversion)",
           "  group  as golden  stop cycle model/STOP in  model (ns)  SPICE (ns)  model − SPICE (ns)"]
    for r in rows:
        spice = "n/a" if r["t_stop_spice_s"] is None else f"{1e9 * r['t_stop_spice_s']:10.2f}"
        diff = "n/a" if r["t_model_minus_spice_s"] is None else f"{1e9 * r['t_model_minus_spice_s']:+8.2f}"
        out.append(f"  {r['group']:5d}  {r['n_firing_as_golden']:4d}/{r['n_columns']:<4d} "
                   f"{r['stop_cycle_model']:10d}/{r['stop_cycle_spice']!s:<10} "
                   f"{1e9 * r['t_stop_model_s']:10.2f}  {spice:>10}  {diff:>10}")
    return out
