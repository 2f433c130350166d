"""`topkima accelerator`: the whole-accelerator estimate and the paper's comparisons.

Reads a configuration (a named preset beside the model, ``behavioral/accelerator/presets``, or
a TOML file, which may start from a preset with ``base = "NAME"``), the calibration artefact
(the Topkima macro's per-event figures) and α, the macro's early-stop fraction, from real
scores (:mod:`.alpha`). Runs the analytic model (:mod:`topkima.behavioral.accelerator`) for one
attention module and the whole model, serial and pipelined, at our α and the paper's; the
softmax-macro comparisons of the paper's eqs. 3–4 at both T_pwm readings; the 1/√d_k scaling
comparison. Writes ``summary.json``, ``tables.md``, CSV tables and breakdown plots into the
output folder (atomically; :mod:`.outputs`) and logs the headline figures.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from topkima.behavioral import accelerator as acc
from topkima.behavioral import softmax_macro as sm
from topkima.behavioral.accelerator import ConfigError
from topkima.studies.accelerator.alpha import resolve_alpha
from topkima.studies.accelerator.outputs import format_report, write_outputs

PAPER = {"throughput_tops": 6.70, "efficiency_tops_per_w": 16.84, "ops": 1.81e9, "latency_s": 270e-6,
         "energy_j": 108e-6, "alpha": 0.31, "speedup_vs_conventional": 15.0, "speedup_vs_dtopk": 8.0,
         "energy_ratio_vs_conventional": 30.0, "energy_ratio_vs_dtopk": 3.0, "sort_share_min": 0.75,
         "scale_free_vs_left_shift": 2.4, "scale_free_vs_tron": 1.5,
         "source": "Dong et al., Topkima-Former, arXiv 2411.13050 (SPEC §4–5)"}
#: sequence lengths d of the softmax macro's scaling table
SEQ_SCALING = (384, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class AcceleratorStudyConfig:
    """What `topkima accelerator` estimates."""

    model: str = "bert-base"            #: workload: bert-base, distilbert, vit-b16 or minilm (``acc.MODELS``)
    seq_len: int | None = None          #: tokens per sequence (None: the model's own, e.g. 384 for BERT-base)
    preset: str = "paper"               #: accelerator configuration: a preset name or a TOML file path
    alpha: float | None = None          #: early-stop fraction α in (0, 1] to use (None: read or measure it)
    alpha_from: str | None = None       #: a `topkima attention` summary.json to read α from
    alpha_sequences: int = 4            #: packed sequences α is measured on
    seed: int = 0                       #: chip, comparator-noise and sentence-order seed of the α measurement
    artefact: str | None = None         #: the macro's calibration artefact (None: the committed one)
    #: kept keys' scores from the ADC codes ("ramp-code", the paper's) or re-scored digitally ("exact",
    #: its cost per row: topkima.behavioral.accelerator.readback)
    readback: str = "ramp-code"
    #: with readback "exact": the k-counter stops at k_c = k + m grants, the digital side keeps the k
    #: best exact scores (None: k); α should then be measured with k_c (--alpha)
    candidates: int | None = None


def softmax_macro_report(calibration, mac: dict, d: int, k: int, alpha: float, activity: float) -> dict:
    """Both T_pwm readings × (our α, the paper's α), sort share, and the sequence-length scaling."""
    base = dict(mac)
    energy, prov = sm.energy_from_calibration(calibration, input_activity=activity, e_nl_value_j=mac["e_nl_value_j"],
                                              e_nl_row_j=mac["e_nl_row_j"])
    out = {"d": d, "k": k, "t_clk_sort_s": mac["t_clk_sort_s"], "t_arb": mac["t_arb"], "readings": {},
           "energy_sources": prov, "per_event_energy_j": {f.name: getattr(energy, f.name) for f in fields(energy)}}
    for reading in sm.T_PWM_READINGS_S:
        t = acc.macro_params(calibration, {**base, "t_pwm_reading": reading}, activity).timing
        entry = {"t_pwm_s": t.t_pwm_s, "t_arb_s": t.t_arb_s}
        for label, a in (("ours", alpha), ("paper_alpha", PAPER["alpha"])):
            c = sm.compare(d, k, t, energy, a)
            cp = sm.compare(d, k, t, energy, a, pipelined=True)
            entry[label] = {**c.as_dict(), "pipelined": {key: v for key, v in cp.as_dict().items()
                                                          if key.startswith(("speedup", "sort"))}}
        t_paper = sm.MacroTiming(t_wr_s=mac["t_wr_s"], t_pwm_s=t.t_pwm_s, t_clk_s=t.t_clk_s,
                                 n_ramp_steps=t.n_ramp_steps, t_arb_s=2.08e-9, t_nl_s=mac["t_nl_s"],
                                 t_clk_sort_s=mac["t_clk_sort_s"])
        c = sm.compare(d, k, t_paper, energy, PAPER["alpha"])
        entry["paper_inputs"] = {"speedup_vs_conventional": c.speedup_vs_conventional,
                                 "speedup_vs_dtopk": c.speedup_vs_dtopk, "sort_share_of_dtopk_latency": c.sort_share_of_dtopk,
                                 "note": "T_arb 2.08 ns and α 0.31 (SPEC §4's inputs)"}
        out["readings"][reading] = entry
    t_main = acc.macro_params(calibration, base, activity).timing
    out["sort_clock_sweep"] = [
        {"t_clk_sort_s": tc, **{key: v for key, v in sm.compare(
            d, k, sm.MacroTiming(**{**{f.name: getattr(t_main, f.name) for f in fields(t_main)}, "t_clk_sort_s": tc}),
            energy, alpha).as_dict().items() if key.startswith(("speedup", "sort"))}}
        for tc in (0.5e-9, 1e-9, 5e-9)]
    out["seq_scaling"] = []
    for dd in SEQ_SCALING:
        c = sm.compare(dd, k, t_main, energy, alpha)
        out["seq_scaling"].append({"d": dd, **{f"latency_{kind}_s": c.latency_s[kind]["total"] for kind in sm.KINDS},
                                   **{f"energy_{kind}_j": c.energy_j[kind]["total"] for kind in sm.KINDS},
                                   "speedup_vs_conventional": c.speedup_vs_conventional,
                                   "speedup_vs_dtopk": c.speedup_vs_dtopk,
                                   "energy_ratio_vs_conventional": c.energy_ratio_vs_conventional,
                                   "energy_ratio_vs_dtopk": c.energy_ratio_vs_dtopk,
                                   "sort_share_of_dtopk_latency": c.sort_share_of_dtopk})
    return out


def run_accelerator(out_dir: str | Path, config: AcceleratorStudyConfig = AcceleratorStudyConfig(), *,
                    log=print) -> dict:
    """The whole estimate; writes its outputs into ``out_dir`` and returns the summary."""
    from topkima.calibration import load_calibration
    model_name, seq_len = config.model, config.seq_len
    if model_name not in acc.MODELS:
        raise ConfigError(f"unknown model {model_name!r}; choose one of {', '.join(acc.MODELS)}")
    model = acc.MODELS[model_name]
    seq = model.seq_len if seq_len is None else seq_len
    if seq < 2:
        raise ConfigError(f"--seq-len must be at least 2, got {seq}")
    if config.artefact is not None and config.alpha is None and config.alpha_from is None:
        raise ConfigError("α is measured on the committed artefact's chip: with --artefact, give --alpha X or "
                          "--alpha-from SUMMARY (a `topkima attention --artefact` run of the same artefact)")
    cal = load_calibration(config.artefact)
    cfg, info = acc.load_config(config.preset, cal)
    k = cfg.macro.k
    if k > seq:
        raise ConfigError(f"macro.k = {k} exceeds the sequence length {seq}")
    if (config.candidates or k) > k and config.alpha is None:
        raise ConfigError("α is measured (and --alpha-from read) with k grants; with --candidates the ramp stops "
                          "later, at the k_c-th grant: give --alpha X, e.g. the alpha_mean of a `topkima lm-eval "
                          "--readback exact --candidates K_C` run")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    alpha_info = resolve_alpha(config.alpha, config.alpha_from, config.alpha_sequences, config.seed, seq, k, out, log)
    alpha = alpha_info["alpha_mean"]
    activity = alpha_info.get("input_activity") or info["values"]["macro"]["input_activity"]
    cfg = acc.AcceleratorConfig(name=cfg.name, system=cfg.system, rram=cfg.rram, sram_av=cfg.sram_av,
                                macro=acc.macro_params(cal, info["values"]["macro"], activity), sources=cfg.sources,
                                readback=config.readback, candidates=config.candidates)
    runs = {}
    for scope in ("attention", "model"):
        for pipelined in (False, True):
            for label, a in (("ours", alpha), ("paper_alpha", PAPER["alpha"])):
                est = acc.estimate(cfg, model, seq, a, pipelined, scope)
                runs[f"{scope}/{'pipelined' if pipelined else 'serial'}/{label}"] = est.as_dict()
    head = runs["attention/serial/ours"]
    macro_rep = softmax_macro_report(cal, info["values"]["macro"], seq, k, alpha, activity)
    reading = info["values"]["macro"]["t_pwm_reading"]
    main = macro_rep["readings"][reading]["ours"]
    sc = info["values"]["scaling"]
    scaling = {}
    for reading_name in sm.T_PWM_READINGS_S:
        t_r = acc.macro_params(cal, {**info["values"]["macro"], "t_pwm_reading": reading_name}, activity).timing
        scaling[reading_name] = acc.scaling_comparison(seq, k, model.d_head, t_r, alpha, sc["t_shift_s"], sc["t_mul_s"])
        scaling[reading_name]["paper_alpha"] = acc.scaling_comparison(seq, k, model.d_head, t_r, PAPER["alpha"],
                                                                      sc["t_shift_s"], sc["t_mul_s"])
    rows = acc.comparison_rows(head["throughput_tops"], head["efficiency_tops_per_w"])
    summary = {
        "model": model.name, "model_source": model.source, "seq_len": seq, "k": k,
        "readback": cfg.readback, "candidates": cfg.candidates or k,
        "config": {"name": cfg.name, "where": info["where"], "description": info["description"],
                   "values": info["values"], "sources": info["sources"]},
        "workload": "one attention module (X·W_QKV, Q·Kᵀ + top-k + softmax, A·V), serial schedule, our α",
        "throughput_tops": head["throughput_tops"], "efficiency_tops_per_w": head["efficiency_tops_per_w"],
        "latency_s": head["latency_s"], "energy_j": head["energy_j"], "ops": head["ops"],
        "alpha": {"value": alpha, "source": alpha_info["source"], "paper": PAPER["alpha"],
                  "input_activity": activity, "measurement": alpha_info},
        "softmax_macro": {"t_pwm_reading": reading,
                          **{key: main[key] for key in ("speedup_vs_conventional", "speedup_vs_dtopk",
                                                        "energy_ratio_vs_conventional", "energy_ratio_vs_dtopk",
                                                        "sort_share_of_dtopk_latency")},
                          "report": macro_rep},
        "scaling": scaling,
        "runs": runs,
        "comparison": {"rows": rows, "ranges": acc.ratio_ranges(rows)},
        "paper": PAPER,
        "deviation_from_paper": {
            "throughput": head["throughput_tops"] / PAPER["throughput_tops"] - 1,
            "efficiency": head["efficiency_tops_per_w"] / PAPER["efficiency_tops_per_w"] - 1,
            "throughput_at_paper_alpha": runs["attention/serial/paper_alpha"]["throughput_tops"] / PAPER["throughput_tops"] - 1,
            "efficiency_at_paper_alpha": runs["attention/serial/paper_alpha"]["efficiency_tops_per_w"] / PAPER["efficiency_tops_per_w"] - 1},
        "calibration_artefact": cal.path,
        "calibration_corner": cal.corner,
    }
    write_outputs(out, summary)
    log(format_report(summary))
    return summary
