"""Figures of a Monte Carlo study (`topkima montecarlo`), PNG and SVG, written atomically.

Drawn from ``summary.json``'s figures (histograms aggregated over instances, per-σ bands) and,
for the SPICE comparison, the samples of :func:`topkima.studies.montecarlo.spice_comparison.spice_vs_behavioural`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.studies.outputs import save_figure_atomic


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: Path, stem: str) -> list[str]:
    """``stem``.png and ``stem``.svg in ``out``, each via a temporary file, fsync and rename."""
    plt = _plt()
    names = []
    try:
        for ext in ("png", "svg"):
            save_figure_atomic(fig, out / f"{stem}.{ext}", dpi=150)
            names.append(f"{stem}.{ext}")
    finally:
        plt.close(fig)
    return names


def _colors(n: int):
    plt = _plt()
    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.0, 0.85, max(n, 1))]


def write_figures(out: Path, summary: dict, spice_samples: dict | None) -> list[str]:
    """All figures of the study; returns the file names written."""
    plt = _plt()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = [repr(float(s)) for s in summary["sigma_scales"]]
    sig = np.array(summary["sigma_scales"], float)
    colors = _colors(len(labels))
    n_inst = summary["instances"]
    k = summary["k"]
    names: list[str] = []

    # code-error histograms (full-ramp codes against the ideal macro)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    lo, hi = summary["histogram_bins"]["code_error"]
    err = np.arange(lo, hi + 1)
    for lab, c in zip(labels, colors):
        h = np.asarray(summary["histograms"][lab]["code_error"], float)
        frac = h / h.sum()
        used = frac > 0
        span = err[used]
        sel = (err >= span.min() - 1) & (err <= span.max() + 1)
        ax.step(err[sel], np.where(frac[sel] > 0, frac[sel], np.nan), where="mid", color=c, label=f"σ × {lab}")
    ax.set_yscale("log")
    ax.set_xlabel("code error (LSB): instance − ideal macro")
    ax.set_ylabel("fraction of conversions")
    ax.set_title(f"Full-ramp code error, keys inside the window (ideal code ≥ 1),\n{n_inst} instances per σ", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "code_error_histogram")

    # code error per ideal code: mean ± σ
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for lab, c in zip(labels, colors):
        ce = summary["code_error"][lab]
        x = np.array(ce["ideal_code"], float)
        m = np.array([np.nan if v is None else v for v in ce["mean_lsb"]])
        s = np.array([np.nan if v is None else v for v in ce["sigma_lsb"]])
        ax.plot(x, m, color=c, label=f"σ × {lab}")
        ax.fill_between(x, m - s, m + s, color=c, alpha=0.15, lw=0)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("ideal code")
    ax.set_ylabel("code error (LSB), mean ± σ")
    ax.set_title("Code error per ideal code")
    ax.legend(fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "code_error_vs_code")

    # INL / DNL spread: per-column max |INL| and max |DNL| over all instances
    edges = np.asarray(summary["histogram_bins"]["inl_dnl_edges_lsb"])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    for ax, name, title in ((axes[0], "inl_max_abs", "max |INL| per column"),
                            (axes[1], "dnl_max_abs", "max |DNL| per column")):
        for lab, c in zip(labels, colors):
            h = np.asarray(summary["histograms"][lab][name], float)
            ax.stairs(h / h.sum(), edges, color=c, label=f"σ × {lab}")
        ax.set_xlabel(f"{title} (LSB)")
        ax.set_title(title)
    axes[0].set_ylabel("fraction of columns")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Ramp ADC linearity spread (endpoint fit), {n_inst} × 256 columns per σ", fontsize=10)
    fig.tight_layout()
    names += _save(fig, out, "inl_dnl_spread")

    # recall / precision vs σ with bands
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for metric, c, name in (("topk_recall", "tab:blue", "recall"), ("topk_precision", "tab:orange", "precision")):
        b = summary[f"{metric}_band"]
        mean = np.array([b[lab]["mean"] for lab in labels])
        ci = np.array([b[lab]["ci95_mean"] for lab in labels])
        spread = np.array([b[lab]["spread95"] for lab in labels])
        ax.fill_between(sig, spread[:, 0], spread[:, 1], color=c, alpha=0.15, lw=0)
        ax.errorbar(sig, mean, yerr=[mean - ci[:, 0], ci[:, 1] - mean], fmt="o-", color=c, capsize=3,
                    label=f"top-{k} {name} vs ideal")
    rn = summary["topk_recall_vs_nominal"]
    ax.plot(sig, [rn[lab] for lab in labels], "s--", color="tab:green", ms=4, label="recall vs nominal chip")
    ax.set_xlabel("σ multiplier (× artefact mismatch and noise)")
    ax.set_ylabel("fraction of the reference set")
    ax.set_title(f"Top-{k} recall vs σ ({n_inst} instances; bars: 95 % CI, shade: 95 % of instances)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "recall_vs_sigma")

    # accuracy vs σ with bands
    acc = summary.get("accuracy") or {}
    if any(acc.get(lab) is not None for lab in labels):
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        b = summary["accuracy_band"]
        n_acc = summary["accuracy_instances"]
        mean = 100 * np.array([b[lab]["mean"] for lab in labels])
        if n_acc >= 3:   # the 95 % CI of the mean across chips
            band_lo, band_hi = (100 * np.array([b[lab]["ci95_mean"][i] for lab in labels]) for i in (0, 1))
            band_name = "95 % CI of the mean over chips"
        else:            # too few chips for a useful t interval: their range
            band_lo = 100 * np.array([min(summary["accuracy_per_instance"][lab]) for lab in labels])
            band_hi = 100 * np.array([max(summary["accuracy_per_instance"][lab]) for lab in labels])
            band_name = "range over chips"
        if summary.get("accuracy_exact") is not None:
            a0, se = 100 * summary["accuracy_exact"], 100 * summary["accuracy_exact_se"]
            ax.axhspan(a0 - 1.96 * se, a0 + 1.96 * se, color="0.85", lw=0, label="exact ± 1.96 binomial s.e.")
            ax.axhline(a0, color="k", ls="--", lw=1, label="exact attention")
        ax.fill_between(sig, band_lo, band_hi, color="tab:blue", alpha=0.25, lw=0, label=band_name)
        for x, lab in zip(sig, labels):
            ax.plot(np.full(n_acc, x), 100 * np.array(summary["accuracy_per_instance"][lab]), ".", color="tab:blue",
                    ms=4, alpha=0.7)
        ax.plot(sig, mean, "o-", color="tab:blue", label="chip (topkima), mean")
        ax.set_xlabel("σ multiplier")
        ax.set_ylabel("probe accuracy (%)")
        ax2 = ax.twinx()
        fb = summary["flip_rate_band"]
        ax2.plot(sig, [100 * fb[lab]["mean"] for lab in labels], "^:", color="tab:red", label="flip rate vs exact")
        ax2.set_ylim(0, max(5.0, 1.3 * max(100 * fb[lab]["mean"] for lab in labels)))
        ax2.set_ylabel("flip rate vs exact (%)", color="tab:red")
        ax.set_title(f"MiniLM probe, {summary.get('accuracy_test_sentences')} VADER sentences, "
                     f"{n_acc} chip{'s' if n_acc != 1 else ''} per σ, k = {k}", fontsize=9)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")
        fig.tight_layout()
        names += _save(fig, out, "accuracy_vs_sigma")

    # α histograms
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n_steps = summary["histogram_bins"]["cycles"][1]
    a_edges = (np.arange(n_steps + 2) - 0.5) / n_steps
    for lab, c in zip(labels, colors):
        h = np.asarray(summary["histograms"][lab]["cycles"], float)
        ax.stairs(h / h.sum(), a_edges, color=c, label=f"σ × {lab}: mean {summary['alpha_mean'][lab]:.3f}")
    ax.axvline(summary["workload"]["alpha_ideal"], color="k", ls="--", lw=1,
               label=f"ideal macro: {summary['workload']['alpha_ideal']:.3f}")
    ax.set_xlabel("α = ramp cycles used / 32")
    ax.set_ylabel("fraction of query rows")
    ax.set_title(f"Early stop (k = {k}), synthetic workload")
    ax.legend(fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "alpha_histogram")

    if spice_samples:
        names += _spice_figure(out, summary["spice_vs_behavioural"], spice_samples)
    return names


def _spice_figure(out: Path, figures: dict, samples: dict) -> list[str]:
    plt = _plt()
    offs = samples["offset"]
    codes = samples.get("codes")
    n_panels = len(offs) + (1 if codes else 0)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.3 * n_panels, 3.4))
    axes = np.atleast_1d(axes)
    for ax, (vcm, spice, model), fig_entry in zip(axes, offs, figures["offset_by_vcm"]):
        lim = 1e3 * max(np.abs(spice).max(), np.percentile(np.abs(model), 99.9))
        bins = np.linspace(-lim, lim, 31)
        ax.hist(1e3 * model, bins=bins, density=True, color="tab:blue", alpha=0.45, label="model")
        ax.hist(1e3 * spice, bins=bins, density=True, histtype="step", color="k", lw=1.2, label="SPICE MC")
        ax.set_xlabel(f"comparator offset (mV), CM {vcm:.2f} V")
        ax.set_title(f"KS p = {fig_entry['ks_pvalue']:.2g}, AD p = {fig_entry['ad_pvalue']:.2g}", fontsize=8)
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    if codes:
        spice_dev, model_dev = codes[2], codes[3]
        ax = axes[-1]
        lo = int(min(spice_dev.min(), model_dev.min())) - 1
        hi = int(max(spice_dev.max(), model_dev.max())) + 1
        bins = np.arange(lo, hi + 1) + 0.5
        ax.hist(model_dev, bins=bins, density=True, color="tab:blue", alpha=0.45, label="model instances")
        ax.hist(spice_dev, bins=bins, density=True, histtype="step", color="k", lw=1.2, label="golden SPICE")
        t = figures["column_codes"]["deviation_from_nominal"]
        ax.set_xlabel("column code − nominal model code (LSB)")
        ax.set_title(f"KS p = {t['ks_pvalue']:.2g}, AD p = {t['ad_pvalue']:.2g}", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("SPICE vs behavioural Monte Carlo", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "spice_vs_behavioural")
