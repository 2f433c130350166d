"""SPICE Monte Carlo against the behavioural model's Monte Carlo, with two-sample tests.

Sources: the two-sample Kolmogorov–Smirnov test (Smirnov 1939; ``scipy.stats.ks_2samp``) and
the k-sample Anderson–Darling test (Scholz & Stephens, JASA 82(399), 1987;
``scipy.stats.anderson_ksamp``).
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from topkima.studies.montecarlo.metrics import codes_from_firing
from topkima.studies.montecarlo.seeds import PURPOSE_SPICE, seed_sequence


def default_golden_path() -> Path:
    """The golden SPICE conversions shipped with the tests (present in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "tests" / "golden" / "column_conversions.json"


def two_sample(a, b) -> dict:
    """KS and Anderson–Darling k-sample statistics and p-values of two samples."""
    from scipy.stats import anderson_ksamp, ks_2samp
    a, b = np.asarray(a, float), np.asarray(b, float)
    ks = ks_2samp(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scipy warns when it caps the p-value to [0.001, 0.25]
        ad = anderson_ksamp([a, b])
    return {"n_spice": int(a.size), "n_model": int(b.size), "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue), "ad_statistic": float(ad.statistic),
            "ad_pvalue": float(ad.pvalue), "ad_pvalue_note": "scipy caps the AD p-value to [0.001, 0.25]",
            "mean_spice": float(a.mean()), "mean_model": float(b.mean()),
            "std_spice": float(a.std(ddof=1)), "std_model": float(b.std(ddof=1))}


def spice_vs_behavioural(cal, seed: int, n_instances: int, golden_path: Path | None = None,
                         k: int = 5) -> tuple[dict, dict]:
    """The artefact's SPICE Monte Carlo against the model's draws; returns (figures, samples).

    * Comparator offsets at each characterised common mode: the SPICE samples
      (``comparator.offset.by_vcm[*].samples_v``, ideal voltage sources) against the offsets of
      ``n_instances`` × 256 model comparators (``draw_tile(...).sa_offset_v``) without the
      in-column threshold term (``comparator.in_column``), which SPICE's ideal sources do not see.
    * Column codes: the golden SPICE conversions (each with its own device draws) against
      ``n_instances`` independently drawn model instances, with noise, converting the same
      inputs; compared as codes and as deviations from the nominal model's code on the same
      input (which removes the inputs' spread and leaves what variation does).
    """
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.golden import load_golden
    from topkima.behavioral.macro.devices import draw_tile
    macro = TopkimaMacro(cal)
    p = macro.params
    n_cols, rows = macro.geometry[0], macro.geometry[1] * len(macro.geometry[2])
    # the SPICE samples are offsets measured with ideal voltage sources: the model's linear offset
    # model without the in-column threshold's shift and extra sensitivities (the same draws)
    ideal_sources = replace(p, sa_in_column_shift_v=0.0, sa_in_column_shift_per_v=0.0, sa_in_column_extra_per_v=None)
    offsets = np.concatenate([draw_tile(ideal_sources, np.random.default_rng(seed_sequence(seed, PURPOSE_SPICE, 0, i)),
                                        n_cols, rows).sa_offset_v for i in range(n_instances)])
    figures, samples = {"offset_by_vcm": []}, {"offset": []}
    for entry in cal.comparator["offset"]["by_vcm"]:
        j = int(np.argmin(np.abs(p.sa_vcm_v - entry["vcm_v"])))
        spice = np.asarray(entry["samples_v"], float)
        model = offsets[:, j]
        figures["offset_by_vcm"].append({"vcm_v": float(entry["vcm_v"]), **two_sample(spice, model)})
        samples["offset"].append((float(entry["vcm_v"]), spice, model))
    path = Path(golden_path) if golden_path is not None else default_golden_path()
    if not path.exists():
        figures["column_codes"] = None
        figures["column_codes_note"] = f"golden SPICE conversions not found at {path}"
        return figures, samples
    golden = load_golden(path)
    rs = golden["range"]
    if (p.n_cal, p.t_cal_units, p.t_ramp_units) != (rs["n_cal"], rs["t_cal_units"], rs["t_ramp_units"]):
        figures["column_codes"] = None
        figures["column_codes_note"] = "the golden file and the artefact use different ADC windows"
        return figures, samples
    groups = golden["groups"]
    widths = [len(g["columns"]) for g in groups]
    if sum(widths) > n_cols:
        raise ValueError("the golden groups do not fit one array side by side")
    # every group's keys side by side in one array, one query row per group
    q = np.zeros((len(groups), p.n_elements), dtype=np.int64)
    kl = np.zeros((p.n_elements, sum(widths)), dtype=np.int64)
    block, c0 = [], 0
    for g, group in enumerate(groups):
        q[g, : len(group["inputs"])] = group["inputs"]
        for c, col in enumerate(group["columns"]):
            kl[: len(col["keys"]), c0 + c] = col["keys"]
        block.append((g, c0, c0 + widths[g]))
        c0 += widths[g]
    spice_codes = np.concatenate([[c["code"] for c in g["columns"]] for g in groups]).astype(np.int64)
    n_steps = p.n_ramp_steps

    def codes_of(res):
        codes = codes_from_firing(res.firing_cycle, n_steps)
        return np.concatenate([codes[g, a:b] for g, a, b in block])

    kk = min(k, kl.shape[1])
    nominal = codes_of(macro.nominal().topk(q, kl, k=kk, mode="conventional"))
    model_codes = []
    for i in range(n_instances):
        chip = macro.instance(np.random.default_rng(seed_sequence(seed, PURPOSE_SPICE, 1, i, 0)))
        res = chip.topk(q, kl, k=kk, mode="conventional",
                        rng=np.random.default_rng(seed_sequence(seed, PURPOSE_SPICE, 1, i, 1)))
        model_codes.append(codes_of(res))
    model_codes = np.stack(model_codes)
    dev_spice = spice_codes - nominal
    dev_model = (model_codes - nominal[None, :]).ravel()
    figures["column_codes"] = {"n_golden_conversions": int(spice_codes.size), "model_instances": n_instances,
                               "codes": two_sample(spice_codes, model_codes.ravel()),
                               "deviation_from_nominal": two_sample(dev_spice, dev_model),
                               "note": "codes are discrete: the KS p-value is conservative; "
                                       "AD uses midranks for ties"}
    samples["codes"] = (spice_codes, model_codes.ravel(), dev_spice, dev_model)
    return figures, samples
