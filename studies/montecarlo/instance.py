"""One chip instance of the study: drawn at a σ multiplier, converting the workload, measured.

What the workers run. Instance i at multiplier s uses the same generators at every s: numpy
draws a normal of scale s as s times the same standard normal, so instance i at s is the same
chip with its deviations scaled (*common random numbers*; the σ curves are smooth and their
differences are paired). The device draws are common at every s; the comparator-noise normals
are common between multipliers with the same noise window (the macro draws 2h normals per
decision, h growing with σ_n: h = 1 up to s = 1 with the committed artefact, 2 at 1.5 and 2),
so there they are fresh.
"""
from __future__ import annotations

import time

import numpy as np

from topkima.studies.allocator import keep_freed_memory
from topkima.studies.montecarlo.config import StudyConfig
from topkima.studies.montecarlo.metrics import INL_DNL_BINS_LSB, codes_from_firing, recall_precision
from topkima.studies.montecarlo.seeds import PURPOSE_INSTANCE, seed_sequence
from topkima.studies.montecarlo.workload import workload


def instance_metrics(cfg: StudyConfig, sigma: float, index: int) -> dict:
    """Draw instance ``index`` at σ multiplier ``sigma``, convert the workload, return its metrics.

    A pure function of its arguments (and the artefact): what workers run. Times (``time_*_s``)
    are the only entries that vary between runs; they are not part of the summary's figures.
    """
    keep_freed_memory()   # once per worker process (speed only)
    ctx = workload(cfg)
    n_steps, k = ctx.n_steps, cfg.k
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    chip = ctx.macro(sigma).instance(np.random.default_rng(seed_sequence(cfg.seed, PURPOSE_INSTANCE, index, 0)))
    lin = chip.ramp_inl_dnl()          # draws the array's mismatch
    t1 = time.perf_counter()
    res = chip.topk(ctx.q_codes, ctx.k_levels, k=k,
                    rng=np.random.default_rng(seed_sequence(cfg.seed, PURPOSE_INSTANCE, index, 1)))
    t2 = time.perf_counter()
    # the full-ramp codes of every key: the firing cycles do not depend on the early stop, and
    # mode="conventional" with the same generator yields the same ones (tested)
    codes = codes_from_firing(res.firing_cycle, n_steps)
    code = ctx.ideal_codes.ravel()
    e = (codes - ctx.ideal_codes).ravel().astype(np.int64)
    # one integer histogram of (ideal code, error), errors −n_steps … n_steps: counts, sums and
    # sums of squares per code follow from it exactly
    width = 2 * n_steps + 1
    n_codes = max(n_steps, int(code.max(initial=0)) + 1)
    joint = np.bincount(code * width + (e + n_steps), minlength=n_codes * width).reshape(n_codes, width)
    err_values = np.arange(-n_steps, n_steps + 1)
    count = joint.sum(axis=1)
    e_sum = joint @ err_values
    e_sq = joint @ (err_values * err_values)
    # the histogram leaves out ideal code 0 (keys below the window, most of them: their error
    # is clipped at 0 from below and says little)
    err_hist = joint[1:].sum(axis=0)
    err_nom = (codes - ctx.nominal_codes).ravel().astype(np.int64)
    rec, prec = recall_precision(res.indices, ctx.ideal.indices)
    rec_nom, _ = recall_precision(res.indices, ctx.nominal.indices)
    rec_exact, _ = recall_precision(res.indices, ctx.exact)
    inl_abs = np.maximum(lin["inl_max_lsb"], -lin["inl_min_lsb"])
    dnl_abs = np.maximum(lin["dnl_max_lsb"], -lin["dnl_min_lsb"])
    edges = INL_DNL_BINS_LSB
    hist = lambda x: np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)[0]  # noqa: E731
    out = {
        "sigma_scale": float(sigma), "index": int(index),
        "topk_recall": rec, "topk_precision": prec, "topk_recall_vs_nominal": rec_nom,
        "topk_recall_vs_exact_digital": rec_exact,
        "rows_short": float(np.mean((res.indices >= 0).sum(axis=-1) < k)),
        "alpha_mean": float(res.alpha.mean()),
        "cycles_hist": np.bincount(res.cycles.astype(np.int64).ravel(), minlength=n_steps + 1).tolist(),
        "code_error_count": count.astype(np.int64).tolist(),
        "code_error_sum": np.rint(e_sum).astype(np.int64).tolist(),     # sums of integers: exact
        "code_error_sumsq": np.rint(e_sq).astype(np.int64).tolist(),
        "code_error_hist": err_hist.astype(np.int64).tolist(),           # errors −32 … 32, ideal code ≥ 1
        "code_error_vs_nominal_sumsq": int(np.dot(err_nom, err_nom)),
        "inl_max_abs_hist": hist(inl_abs).tolist(), "dnl_max_abs_hist": hist(dnl_abs).tolist(),
        "inl_max_median_lsb": float(np.median(lin["inl_max_lsb"])),
        "inl_min_median_lsb": float(np.median(lin["inl_min_lsb"])),
        "dnl_max_median_lsb": float(np.median(lin["dnl_max_lsb"])),
        "dnl_min_median_lsb": float(np.median(lin["dnl_min_lsb"])),
        "energy_per_row_j": float(res.energy_j.mean()),
    }
    out["time_draw_s"], out["time_topk_s"], out["time_metrics_s"] = t1 - t0, t2 - t1, time.perf_counter() - t2
    out["time_cpu_s"] = time.process_time() - cpu0   # this process's CPU time: what a busy machine does not inflate
    return out
