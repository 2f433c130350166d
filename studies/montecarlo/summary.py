"""A study's summary: per-instance results aggregated by σ multiplier, in instance order
(float64, fixed order), so that any executor and any completion order give identical figures."""
from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np

from topkima.studies.montecarlo.config import StudyConfig, sigma_label
from topkima.studies.montecarlo.metrics import INL_DNL_BINS_LSB, band


def timing(results: dict, acc_results: dict, t_tasks_s: float, n_run: int) -> dict:
    """Where the time went (not a result: it differs between identical runs)."""
    per = list(results.values())
    mean = lambda name: float(np.mean([r[name] for r in per])) if per else None  # noqa: E731
    return {"task_phase_wall_s": round(t_tasks_s, 3), "instances_run_now": n_run,
            "instance_draw_s_mean": mean("time_draw_s"), "instance_topk_s_mean": mean("time_topk_s"),
            "instance_metrics_s_mean": mean("time_metrics_s"),
            "instance_cpu_s_mean": mean("time_cpu_s") if per and "time_cpu_s" in per[0] else None,
            "accuracy_run_s_mean": float(np.mean([r["time_s"] for r in acc_results.values()])) if acc_results else None}


def summarise(cfg: StudyConfig, results: dict, acc_results: dict, bundle: dict | None, spice: dict | None) -> dict:
    """Aggregate per-instance results by σ multiplier, in instance order (float64, fixed order)."""
    labels = [sigma_label(s) for s in cfg.sigma_scales]
    n_steps = len(results[(labels[0], 0)]["code_error_count"])
    summary = {"study": "Monte Carlo of the calibrated Topkima macro (see topkima.studies.montecarlo)",
               "instances": cfg.instances, "seed": cfg.seed, "k": cfg.k, "sigma_scales": list(cfg.sigma_scales),
               "config": {**asdict(cfg), "sigma_scales": list(cfg.sigma_scales)},
               "common_random_numbers": "instance i at every σ multiplier: the same device standard normals, scaled; "
                                    "comparator-noise normals shared only between multipliers with the same "
                                    "noise window (2h per decision, h grows with σ_n)"}
    metrics = ("topk_recall", "topk_precision", "topk_recall_vs_nominal", "topk_recall_vs_exact_digital",
               "alpha_mean", "rows_short", "energy_per_row_j", "inl_max_median_lsb", "inl_min_median_lsb",
               "dnl_max_median_lsb", "dnl_min_median_lsb")
    for m in metrics:
        summary[m], summary[f"{m}_band"] = {}, {}
    summary["code_error"], summary["code_error_rms_lsb"], summary["histograms"] = {}, {}, {}
    summary["code_error_vs_nominal_rms_lsb"] = {}
    for lab in labels:
        per = [results[(lab, i)] for i in range(cfg.instances)]
        for m in metrics:
            b = band([r[m] for r in per])
            summary[m][lab], summary[f"{m}_band"][lab] = b["mean"], b
        count = np.sum([r["code_error_count"] for r in per], axis=0)
        e_sum = np.sum([r["code_error_sum"] for r in per], axis=0)
        e_sq = np.sum([r["code_error_sumsq"] for r in per], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = e_sum / count
            var = np.maximum(e_sq / count - mean ** 2, 0.0) * count / np.maximum(count - 1, 1)
            per_inst = np.array([np.asarray(r["code_error_sum"]) / np.asarray(r["code_error_count"]) for r in per])
        lo, hi = mean, mean
        if cfg.instances > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # codes no instance produced: NaN
                lo, hi = np.nanpercentile(per_inst, [2.5, 97.5], axis=0)
        ok = count > 0
        nz = lambda x: [float(v) if o else None for v, o in zip(x, ok)]  # noqa: E731
        summary["code_error"][lab] = {"ideal_code": list(range(n_steps)), "n": count.astype(int).tolist(),
                                      "mean_lsb": nz(mean), "sigma_lsb": nz(np.sqrt(var)),
                                      "instance_mean_spread95_lsb": [nz(lo), nz(hi)]}
        summary["code_error_rms_lsb"][lab] = float(np.sqrt(e_sq.sum() / count.sum()))
        summary["code_error_vs_nominal_rms_lsb"][lab] = float(np.sqrt(
            np.sum([r["code_error_vs_nominal_sumsq"] for r in per]) / count.sum()))
        summary["histograms"][lab] = {
            "code_error": np.sum([r["code_error_hist"] for r in per], axis=0).astype(int).tolist(),
            "cycles": np.sum([r["cycles_hist"] for r in per], axis=0).astype(int).tolist(),
            "inl_max_abs": np.sum([r["inl_max_abs_hist"] for r in per], axis=0).astype(int).tolist(),
            "dnl_max_abs": np.sum([r["dnl_max_abs_hist"] for r in per], axis=0).astype(int).tolist()}
    summary["histogram_bins"] = {"code_error": [-n_steps, n_steps], "cycles": [0, n_steps],
                                 "inl_dnl_edges_lsb": INL_DNL_BINS_LSB.tolist()}
    summary["accuracy_instances"] = cfg.accuracy_instances
    summary["accuracy"], summary["accuracy_band"], summary["flip_rate"], summary["flip_rate_band"] = {}, {}, {}, {}
    summary["alpha_mean_real_scores"], summary["accuracy_per_instance"], summary["flip_rate_per_instance"] = {}, {}, {}
    for lab in labels:
        per = [acc_results[(lab, i)] for i in range(cfg.accuracy_instances)] if cfg.accuracy_instances else []
        if not per:
            summary["accuracy"][lab] = summary["flip_rate"][lab] = None
            continue
        for m, dest in (("accuracy", "accuracy"), ("flip_rate", "flip_rate")):
            b = band([r[m] for r in per])
            summary[dest][lab], summary[f"{dest}_band"][lab] = b["mean"], b
        summary["alpha_mean_real_scores"][lab] = float(np.mean([r["alpha_mean_real_scores"] for r in per]))
        summary["accuracy_per_instance"][lab] = [r["accuracy"] for r in per]
        summary["flip_rate_per_instance"][lab] = [r["flip_rate"] for r in per]
    if bundle is not None:
        from topkima.studies.probe import binomial_se
        n = len(bundle["labels"])
        summary["accuracy_exact"] = bundle["accuracy_exact"]
        summary["accuracy_exact_se"] = binomial_se(bundle["accuracy_exact"], n)
        summary["accuracy_test_sentences"] = n
        summary["accuracy_task"] = ("VADER movie-review snippets, sign(rating) for |rating| >= 0.5, logistic probe on "
                                    "exact all-MiniLM-L6-v2 embeddings of the training subset; fixed test subset "
                                    "re-embedded with the chip in every attention layer (frozen per-head windows)")
    summary["spice_vs_behavioural"] = spice
    return summary
