"""The comparator's calibration: its jobs, and the artefact's ``comparator`` section.

Every random draw is made here, in :func:`plan`, from ``settings.rng("comparator.offset")``
(the measurement jobs receive them as arguments). The artefact section collects the
measurements and fits the offset's linear model in the device threshold shifts
(:func:`fit_offset_linear_model`).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from topkima.circuits import timing as tm
from topkima.circuits.comparator import (BLOCK, DEVICE_BY_NAME, DEVICES, NETLISTS, PINS, SUBCKT, corner_delvto_v,
                                         device_sigma_vth_v, draw_mismatch_v, pelgrom_input_pair_sigma_v)
from topkima.circuits.comparator_bench import (C_LOAD_F, DELAY_OVERDRIVES_QUICK_V, DELAY_OVERDRIVES_V, DELAY_VCM_V,
                                              ENERGY_OVERDRIVES_V, ENERGY_TYPICAL_OVERDRIVE_V, OFFSET_TOL_V,
                                              OFFSET_VCM_V, T_CLK_EDGE_S, VCM_V)
from topkima.circuits.comparator_insitu import (C_BITLINE_F, C_CROSS_NEUTRALISE_F, C_IMBALANCE_FRACTION,
                                               C_NEUTRALISE_F, INSITU_STEP_V, INSITU_TOL_V, INSITU_VCM_QUICK_V,
                                               INSITU_VCM_V, KICK_VDIFF_V, N_HISTORY, T_MAX_INSITU_S, column_timing)
from topkima.circuits.comparator_noise import NOISE_TAU_STEP_QUICK_S, NOISE_TAU_STEP_S
from topkima.circuits.jobs import Job
from topkima.circuits.settings import CalSettings

RNG_PURPOSE = "comparator.offset"
_BENCH = "topkima.circuits.comparator_bench:"
_NOISE = "topkima.circuits.comparator_noise:"
_INSITU = "topkima.circuits.comparator_insitu:"
#: Mirror-image device pairs: swapping sides flips the offset's sign, so the budget
#: simulates the first of each pair and counts the pair twice. The clock inverter and
#: the tail are shared by both sides and add no offset by symmetry.
MIRROR_PAIRS: tuple[tuple[str, str], ...] = (
    ("mip", "min"), ("mlp", "mln"), ("mnp", "mnn"), ("mrxp", "mrxn"), ("mrlp", "mrln"),
    ("mb1pp", "mb1np"), ("mb1pn", "mb1nn"), ("mb2pp", "mb2np"), ("mb2pn", "mb2nn"),
)


def _offset_draws(settings: CalSettings) -> dict[str, np.ndarray]:
    """The Monte Carlo's local threshold draws (V), regenerated identically from the seed."""
    return draw_mismatch_v(settings.rng(RNG_PURPOSE), settings.mc_samples, design=settings.design)


def _common(settings: CalSettings) -> dict:
    return {"vdd_v": float(settings.supplies.v_sa_v), "temperature_c": float(settings.temperature_c),
            "c_load_f": C_LOAD_F}


def _mv(v: float) -> str:
    return f"{round(v * 1e3):d}mV"


def plan(settings: CalSettings) -> list[Job]:
    """Every comparator job for ``settings`` (offset MC, offset budget, delay, energy, noise)."""
    common = _common(settings)
    shift = corner_delvto_v(settings.corner)
    jobs: list[Job] = []
    draws = _offset_draws(settings)
    for i in range(settings.mc_samples):
        delvto = {d.name: shift[d.name] + float(draws[d.name][i]) for d in DEVICES}
        jobs.append(Job(BLOCK, f"{BLOCK}/offset/{i:04d}", _BENCH + "offset_sample",
                        {"delvto_v": delvto, "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    jobs.append(Job(BLOCK, f"{BLOCK}/budget/none", _BENCH + "offset_sample",
                    {"delvto_v": dict(shift), "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    for first, _ in MIRROR_PAIRS:
        d = DEVICE_BY_NAME[first]
        delvto = dict(shift)
        delvto[first] += device_sigma_vth_v(d, settings.design)
        jobs.append(Job(BLOCK, f"{BLOCK}/budget/{first}", _BENCH + "offset_sample",
                        {"delvto_v": delvto, "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    ods = DELAY_OVERDRIVES_QUICK_V if settings.quick else DELAY_OVERDRIVES_V
    for vcm in DELAY_VCM_V:
        jobs.append(Job(BLOCK, f"{BLOCK}/delay/{_mv(vcm)}", _BENCH + "delay_sweep",
                        {"vcm_v": vcm, "overdrive_v": list(ods), "delvto_v": dict(shift), **common}, NETLISTS))
    jobs.append(Job(BLOCK, f"{BLOCK}/energy/{_mv(VCM_V)}", _BENCH + "energy_per_decision",
                    {"vcm_v": VCM_V, "overdrive_v": list(ENERGY_OVERDRIVES_V), "delvto_v": dict(shift), **common},
                    NETLISTS))
    step = NOISE_TAU_STEP_QUICK_S if settings.quick else NOISE_TAU_STEP_S
    for vcm in OFFSET_VCM_V:
        jobs.append(Job(BLOCK, f"{BLOCK}/noise/{_mv(vcm)}", _NOISE + "noise_estimate",
                        {"vcm_v": vcm, "delvto_v": dict(shift), "tau_step_s": step, **common}, NETLISTS))
    cms = insitu_vcm_v(settings)
    for name, _, i in insitu_instances(settings):
        delvto = {d.name: shift[d.name] + float(draws[d.name][i]) for d in DEVICES}
        for vcm in cms:
            jobs.append(Job(BLOCK, f"{BLOCK}/insitu/{name}/{_mv(vcm)}", _INSITU + "insitu_threshold",
                            {"vcm_v": vcm, "delvto_v": delvto, "timing": column_timing(), **common}, NETLISTS))
    for vcm in cms:
        jobs.append(Job(BLOCK, f"{BLOCK}/kick/{_mv(vcm)}", _INSITU + "kickback",
                        {"vcm_v": vcm, "delvto_v": dict(shift), "timing": column_timing(), **common}, NETLISTS))
    return jobs


def insitu_vcm_v(settings: CalSettings) -> tuple[float, ...]:
    """Common modes (V) of the in-situ and kick jobs."""
    return INSITU_VCM_QUICK_V if settings.quick else INSITU_VCM_V


def insitu_instances(settings: CalSettings) -> list[tuple[str, str, int]]:
    """Monte Carlo instances whose in-situ threshold is measured: (name, why, sample index).

    A nominal instance reads 0 both ways by symmetry, so two drawn ones are used:
    the sample with the largest latch-PMOS mismatch (its offset is not the input
    pair's: at the balance point the input devices carry unequal overdrives, hence
    unequal channel charge, the in-situ error mechanism) and the one with the largest
    input-pair mismatch (the usual dominant offset).
    """
    draws = _offset_draws(settings)
    i_latch = int(np.argmax(np.abs(draws["mlp"] - draws["mln"])))
    i_pair = int(np.argmax(np.abs(draws["mip"] - draws["min"])))
    out = [(f"mc{i_latch:04d}", "largest latch-PMOS mismatch |dvt_mlp - dvt_mln|", i_latch)]
    if i_pair != i_latch:
        out.append((f"mc{i_pair:04d}", "largest input-pair mismatch |dvt_mip - dvt_min|", i_pair))
    return out


def sigma_confidence_interval(sigma: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Chi-square confidence interval of a normal σ estimated (ddof = 1) from ``n`` samples."""
    from scipy.stats import chi2
    dof = n - 1
    lo_q, hi_q = chi2.ppf([(1 + level) / 2, (1 - level) / 2], dof)
    return float(sigma * math.sqrt(dof / lo_q)), float(sigma * math.sqrt(dof / hi_q))


def _get(results: Mapping[str, dict], label: str) -> dict:
    try:
        return results[label]
    except KeyError:
        raise ValueError(f"comparator section: result '{label}' is missing; rerun the comparator plan") from None


def _at_overdrive(od_v: float, overdrives_v: Sequence[float], values: Sequence[float]) -> float:
    """``values`` interpolated at ``od_v`` on a log-overdrive axis (the points include it)."""
    order = np.argsort(overdrives_v)
    return float(np.interp(math.log10(od_v), np.log10(np.asarray(overdrives_v)[order]), np.asarray(values)[order]))


def fit_offset_linear_model(draws: Mapping[str, np.ndarray], samples: np.ndarray) -> dict:
    """Least-squares offset model per common mode: V_os = intercept + Σ_i s_i·ΔV_th,i.

    Fitted to the Monte Carlo samples (draws → bisected offsets); it lets the behavioural
    model give a chip instance with explicit device draws (e.g. a golden SPICE column) its
    offset, and shows how linear the offset is (``residual_sigma_v``).
    """
    names = [d.name for d in DEVICES]
    x = np.column_stack([np.ones(samples.shape[0])] + [np.asarray(draws[n]) for n in names])
    coef, *_ = np.linalg.lstsq(x, samples, rcond=None)          # (1 + n_dev, n_vcm)
    resid = samples - x @ coef
    dof = max(samples.shape[0] - x.shape[1], 1)
    return {"vcm_v": list(OFFSET_VCM_V), "devices": names,
            "intercept_v": coef[0].tolist(), "sensitivity_v_per_v": coef[1:].T.tolist(),
            "residual_sigma_v": np.sqrt((resid ** 2).sum(axis=0) / dof).tolist()}


def artefact_section(settings: CalSettings, results: Mapping[str, dict]) -> dict:
    """The comparator's artefact section (JSON-able; every quantity's unit in its key)."""
    common = _common(settings)
    n = settings.mc_samples
    draws = _offset_draws(settings)
    samples = np.array([_get(results, f"{BLOCK}/offset/{i:04d}")["offset_v"] for i in range(n)])  # (n, n_vcm)
    ref = np.array(_get(results, f"{BLOCK}/budget/none")["offset_v"])
    budget, var_budget = [], np.zeros(len(OFFSET_VCM_V))
    for first, second in MIRROR_PAIRS:
        d = DEVICE_BY_NAME[first]
        s_vth = device_sigma_vth_v(d, settings.design)
        sens = (np.array(_get(results, f"{BLOCK}/budget/{first}")["offset_v"]) - ref) / s_vth
        contribution = math.sqrt(2.0) * np.abs(sens) * s_vth  # both devices of the pair
        var_budget += contribution ** 2
        budget.append({"devices": [first, second], "sigma_vth_v": s_vth,
                       "sensitivity_v_per_v": sens.tolist(), "sigma_contribution_v": contribution.tolist()})
    by_vcm = []
    for j, vcm in enumerate(OFFSET_VCM_V):
        col = samples[:, j]
        sigma = float(np.std(col, ddof=1))
        by_vcm.append({"vcm_v": vcm, "sigma_v": sigma, "sigma_ci95_v": list(sigma_confidence_interval(sigma, n)),
                       "mean_v": float(np.mean(col)), "budget_sigma_v": float(math.sqrt(var_budget[j])),
                       "samples_v": col.tolist()})
    delay = [_get(results, f"{BLOCK}/delay/{_mv(v)}") for v in DELAY_VCM_V]
    energy = _get(results, f"{BLOCK}/energy/{_mv(VCM_V)}")
    noise = [{k: v for k, v in _get(results, f"{BLOCK}/noise/{_mv(v)}").items()} for v in OFFSET_VCM_V]
    sensitivity = fit_offset_linear_model(draws, samples)
    d_main = delay[DELAY_VCM_V.index(VCM_V)]
    i_main = OFFSET_VCM_V.index(VCM_V)
    insitu = _insitu_section(settings, results)
    return {
        "netlist": NETLISTS[0],
        "subckt": SUBCKT,
        "pins": list(PINS),
        "clock": "clk high = evaluate, clk low = reset",
        "reset_output_level": "both outputs low (vss) during reset",
        "decision": "outp high iff V(inp) - V(inn) > offset",
        "corner": settings.corner_name,
        **common,
        "t_clk_s": tm.active().t_clk_ramp_s,
        "t_edge_s": T_CLK_EDGE_S,
        "devices": [{"name": d.name, "kind": d.kind, "w_m": settings.design.sizes.comparator[d.name].w_m,
                     "l_m": settings.design.sizes.comparator[d.name].l_m, "role": d.role,
                     "sigma_vth_v": device_sigma_vth_v(d, settings.design)} for d in DEVICES],
        # headline figures at the primary common mode VCM_V (the artefact schema's fields)
        "vcm_v": VCM_V,
        "offset_sigma_v": by_vcm[i_main]["sigma_v"],
        "offset_sigma_ci95_v": by_vcm[i_main]["sigma_ci95_v"],
        "offset_mean_v": by_vcm[i_main]["mean_v"],
        "e_per_decision_j": _at_overdrive(ENERGY_TYPICAL_OVERDRIVE_V, energy["overdrive_v"],
                                          energy["e_per_decision_j"]),
        "noise_sigma_v": noise[i_main]["sigma_noise_v"],
        "t_clk_to_q_1mv_s": _at_overdrive(1e-3, d_main["overdrive_v"], d_main["t_clk_to_out_s"]),
        "t_clk_to_q_10mv_s": _at_overdrive(1e-2, d_main["overdrive_v"], d_main["t_clk_to_out_s"]),
        "delay_vs_overdrive": {"vcm_v": VCM_V, "overdrive_v": list(d_main["overdrive_v"]),
                               "t_clk_to_q_s": list(d_main["t_clk_to_out_s"])},
        "offset": {
            "method": "Monte Carlo of per-device Pelgrom delvto (+ corner shift); offset per sample by "
                      "bisection of V(inp)-V(inn) at each common mode, one transient per trial",
            "seed": settings.seed,
            "rng_purpose": RNG_PURPOSE,
            "n_samples": n,
            "bisection_tol_v": OFFSET_TOL_V,
            "pelgrom_input_pair_sigma_v": pelgrom_input_pair_sigma_v(settings.design),
            "by_vcm": by_vcm,
            "budget": budget,
            "corner_delvto_v": {"n": settings.corner.delvto_n(), "p": settings.corner.delvto_p()},
            "draws_dvth_v": {name: draws[name].tolist() for name in DEVICE_BY_NAME},
            "linear_model": sensitivity,
        },
        "delay": {"definition": "clk rising through vdd/2 to the winning output rising through vdd/2",
                  "by_vcm": delay},
        "energy": {"definition": "-VDD * integral of i(vdd) over one clock period from the rising edge "
                                 "(evaluate + reset), internal clock inverter, output loads and the kickback-"
                                 "neutralisation capacitors (charged through clkb) included; no static bias "
                                 "current exists, reset leakage is inside the period",
                   "c_neutralise_f": C_NEUTRALISE_F,
                   "typical_overdrive_v": ENERGY_TYPICAL_OVERDRIVE_V, **energy},
        "noise": {"method": "linear time-varying estimate (see comparator.noise_estimate): input-pair channel "
                            "noise density from ngspice .noise x pulse sensitivity from transients, plus reset "
                            "kT/C; not a transient noise simulation",
                  "by_vcm": noise},
        "insitu": insitu,
    }


def _insitu_section(settings: CalSettings, results: Mapping[str, dict]) -> dict:
    """The ``insitu`` part of the summary: thresholds on floating inputs, kick, input load."""
    cms = list(insitu_vcm_v(settings))
    instances = []
    for name, why, i in insitu_instances(settings):
        rs = [_get(results, f"{BLOCK}/insitu/{name}/{_mv(v)}") for v in cms]
        ideal = [r["offset_ideal_v"] for r in rs]
        first = [r["threshold_first_v"] for r in rs]
        hist = [r["threshold_after_history_v"] for r in rs]
        instances.append({"name": name, "mc_sample": i, "selected_for": why, "offset_ideal_v": ideal,
                          "threshold_first_v": first, "threshold_after_history_v": hist,
                          "deviation_first_v": [a - b for a, b in zip(first, ideal)],
                          "deviation_after_history_v": [a - b for a, b in zip(hist, ideal)],
                          "prior_fired_at_flip": [r["after_history"]["prior_fired_at_flip"] for r in rs]})
    deviations = [abs(x) for inst in instances for x in inst["deviation_first_v"] + inst["deviation_after_history_v"]]
    kicks = [_get(results, f"{BLOCK}/kick/{_mv(v)}") for v in cms]

    def col(key):
        return [k[key] for k in kicks]

    return {
        "method": "floating-input testbench: each input a c_bitline_f capacitor set by an ideal switch that "
                  "opens 0.3 ns before the first clock edge; clocked as in the column (timing_s, read from "
                  "circuits/column.py); threshold = V(inp)-V(inn) at the clock edge "
                  "at which the decision flips (bisection); 'after history' = the decision after n_history "
                  "'not fired' ones with the differential rising by step_v per cycle (a ramp on inn); the ideal-"
                  "source offset of the same instance beside it",
        "c_bitline_f": C_BITLINE_F,
        "c_neutralise_f": C_NEUTRALISE_F,
        "c_cross_neutralise_f": C_CROSS_NEUTRALISE_F,
        "step_v": INSITU_STEP_V,
        "n_history": N_HISTORY,
        "tol_v": INSITU_TOL_V,
        "t_max_step_s": T_MAX_INSITU_S,
        "timing_s": column_timing(),
        "v_cm_v": cms,
        # headline: the first instance (latch-dominated offset)
        "instance": instances[0]["name"],
        "offset_ideal_v": instances[0]["offset_ideal_v"],
        "threshold_first_v": instances[0]["threshold_first_v"],
        "threshold_after_history_v": instances[0]["threshold_after_history_v"],
        "max_abs_deviation_v": max(deviations),
        "instances": instances,
        "c_in_reset_f": col("c_in_reset_f"),
        "c_in_latched_f": col("c_in_latched_f"),
        "kick": {
            "definition": "nominal instance, floating c_bitline_f inputs, differential +-vdiff_v, no ramp; "
                          "relative to the value at the first clock edge",
            "vdiff_v": KICK_VDIFF_V,
            "cm_excursion_max_v": col("cm_excursion_max_v"),
            "cm_excursion_min_v": col("cm_excursion_min_v"),
            "cm_at_read_v": col("cm_at_read_v"),
            "cm_residue_first_cycle_v": [k["cm_residue_v"][0] for k in kicks],
            "cm_residue_later_cycles_v": [k["cm_residue_v"][-1] for k in kicks],
            "diff_excursion_max_abs_v": col("diff_excursion_max_abs_v"),
            "diff_residue_fired_v": [max(k["diff_residue_fired_v"], key=abs) for k in kicks],
            "diff_residue_not_fired_v": [max(k["diff_residue_not_fired_v"], key=abs) for k in kicks],
            "c_imbalance_fraction": C_IMBALANCE_FRACTION,
            "threshold_shift_per_pct_imbalance_v": col("threshold_shift_per_pct_imbalance_v"),
        },
    }
