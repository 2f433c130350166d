"""`topkima lm-eval`: a causal decoder LM (SmolLM2-135M-Instruct) with Topkima attention.

Text: the VADER archive's Amazon review snippets as running text (a registry package, hash
checked; :mod:`topkima.behavioral.models.review_text`), cut into disjoint windows of ``tokens``
tokens. Two sets of windows and chips (:func:`set_layout`), each with its own calibration windows,
used only to fit each layer's frozen :class:`~topkima.behavioral.ranges.AttentionRanges` (key and
value scales, ADC windows, A·V full scale) — the scored text never sets a range, and every row
sees only its past (causal mask, frozen ranges: ``tests/behavioral/test_ranges.py``):

* ``eval`` (the default), the **evaluated** set, the one results are reported on: windows
  0 … n−1 scored, windows n … 2n−1 fit the ranges, chips 0 … c−1;
* ``select``, the **selection** set, the one policies and defaults are chosen on (never
  reported as evidence): windows 2n … 3n−1 scored, windows 3n … 4n−1 fit the ranges, chips
  10 … 10+c−1 (at n = 4: windows 8–11 and 12–15, chips 10, 11, …, where the key policy and ADC
  window defaults were chosen). The two share no window (at the same ``tokens`` and ``windows``)
  and no chip seed (at most :data:`MAX_CHIPS` chips).

Per (mode, k) — and per chip in ``topkima`` mode — it reports perplexity and next-token accuracy
over the evaluated windows, the fraction of rows that kept fewer than k keys and (topkima) the
early-stop fraction α. Modes: ``exact``; ``float-topk`` (the k largest float scores, exact
softmax over them: top-k without quantisation); and the quantised modes of
:func:`~topkima.behavioral.topkima_attention`.

The work is one task per (run, evaluated window), each a forward of one window with the comparator
noise of its own generator (seeded by k, mode, chip and window) and the chip drawn from its seed
alone, run on local worker processes or a Dask cluster (``workers``, ``scheduler``: the
Monte Carlo study's executor, :mod:`topkima.studies.montecarlo.execution`); a run's figures are
its windows' sums added in window order, so they do not depend on how many workers ran them or
where. Each finished window and each finished run is a JSON file under ``out/runs/<identity>/``
(atomic), beside the frozen ranges (``ranges.json``), so an interrupted evaluation resumes;
``summary.json`` and ``perplexity_vs_k.png`` are written at the end.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_json_atomic
from topkima.studies.code_version import code_version
from topkima.studies.outputs import save_figure_atomic
from topkima.studies import process_models

LM_MODES = ("exact", "float-topk", "quantized", "topk", "subtopk", "topkima")
TOKEN_CHOICES = (256, 512, 1024)
#: the window and chip sets: "eval" is reported, "select" is only for choosing (see set_layout)
TEXT_SETS = ("eval", "select")
#: chips of the selection set are seeds SELECTION_FIRST_CHIP, …; the evaluated set's are 0, 1, … [ours]
SELECTION_FIRST_CHIP = 10
#: at most this many chips per run, so that evaluated chips (0 … 9) and selection chips (10 …) never meet
MAX_CHIPS = SELECTION_FIRST_CHIP
#: what a summary says it is, in its own words
SET_PURPOSE = {
    "eval": "evaluated set: the windows and chips results are reported on; nothing was chosen or fitted on them",
    "select": "selection set: for choosing policies and defaults only, never evidence of accuracy; report the "
              "evaluated set (--set eval) for that",
}


@dataclass(frozen=True)
class LmEvalConfig:
    """What `topkima lm-eval` evaluates. Every field is part of its resumable runs' identity."""

    tokens: int = 256                        #: tokens per window (256, 512 or 1024)
    windows: int = 4                         #: evaluated windows (as many more fit the ranges)
    ks: tuple[int, ...] = (5,)               #: keys kept per query row
    modes: tuple[str, ...] = LM_MODES        #: attention modes (a subset of LM_MODES)
    chips: int = 3                           #: chips (mismatch draws; seeds: set_layout) in topkima mode
    # the defaults below were chosen on the selection set (windows 8–15, chips 10 and 11;
    # docs/language-model.md), never on the windows evaluated (0 … windows−1) or the chips reported
    key_policy: str = "channel"              #: frozen key scales: "sequence-head" or "channel"
    window_top_quantile: float = 1.0         #: ADC window top: this quantile of the rows' best scores
    window_bottom_quantile: float = 0.0      #: ADC window bottom: this quantile of their k-th best
    text_set: str = "eval"                   #: "eval" (reported) or "select" (for choosing): see set_layout
    #: topkima mode: keys written into the array in "token" order or "newest-first" (which key wins a
    #: tie at the arbiter: topkima.behavioral.key_order)
    key_order: str = "token"
    #: topkima mode: kept keys' scores from their "ramp-code" or recomputed "exact"ly from the kept key
    #: rows (topkima.behavioral.readback)
    readback: str = "ramp-code"
    #: topkima mode with the exact read-back: the grants k_c = k + m after which the k-counter stops;
    #: the k best exact scores among them are kept (topkima.behavioral.readback); None: k
    candidates: int | None = None
    #: the A·V ADC's full scale per head: "max" of the calibration outputs (default) or a quantile of
    #: them in (0, 1), beyond which the ADC clips (topkima.behavioral.ranges)
    av_full_scale: str | float = "max"
    #: topkima mode: the A·V column ADC's signed bits (5: the paper's; others a behavioural what-if)
    av_adc_bits: int = 5

    def validated(self) -> "LmEvalConfig":
        """This configuration, or ValueError naming the field that is wrong."""
        from topkima.behavioral import KEY_SCALE_POLICIES
        if self.tokens not in TOKEN_CHOICES:
            raise ValueError(f"tokens must be one of {TOKEN_CHOICES}, got {self.tokens!r}")
        for name in ("windows", "chips"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.chips > MAX_CHIPS:
            raise ValueError(f"chips must be at most {MAX_CHIPS} (evaluated chips are seeds 0…{MAX_CHIPS - 1}, "
                             f"selection chips {SELECTION_FIRST_CHIP}…), got {self.chips}")
        if self.text_set not in TEXT_SETS:
            raise ValueError(f"text_set must be one of {', '.join(TEXT_SETS)} (eval: the reported windows and "
                             f"chips; select: held apart for choosing policies), got {self.text_set!r}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks!r}")
        if len(set(self.ks)) != len(self.ks) or len(set(self.modes)) != len(self.modes):
            raise ValueError(f"ks and modes must not repeat, got ks {self.ks!r}, modes {self.modes!r}")
        unknown = [m for m in self.modes if m not in LM_MODES]
        if unknown or not self.modes:
            raise ValueError(f"modes must be some of {', '.join(LM_MODES)}, got {self.modes!r}")
        if self.key_policy not in KEY_SCALE_POLICIES:
            raise ValueError(f"key_policy must be one of {', '.join(KEY_SCALE_POLICIES)}, got {self.key_policy!r}")
        from topkima.behavioral.key_order import KEY_ORDERS
        from topkima.behavioral.readback import READBACKS
        if self.key_order not in KEY_ORDERS:
            raise ValueError(f"key_order must be one of {', '.join(KEY_ORDERS)}, got {self.key_order!r}")
        if self.readback not in READBACKS:
            raise ValueError(f"readback must be one of {', '.join(READBACKS)}, got {self.readback!r}")
        if self.candidates is not None:
            c = self.candidates
            if isinstance(c, bool) or not isinstance(c, int) or c < max(self.ks):
                raise ValueError(f"candidates (the grants after which the k-counter stops, k + m) must be an integer "
                                 f"≥ every k ({max(self.ks)}), got {c!r}")
            if c > min(self.ks) and self.readback != "exact":
                raise ValueError(f"candidates = {c} > k needs readback 'exact' (the candidates are ranked by their "
                                 f"exact scores), got readback {self.readback!r}")
        if not 0.0 <= self.window_bottom_quantile <= self.window_top_quantile <= 1.0:
            raise ValueError("need 0 ≤ window_bottom_quantile ≤ window_top_quantile ≤ 1")
        from topkima.behavioral.attention import AV_ADC_BITS_MAX
        from topkima.behavioral.ranges import check_av_full_scale_policy
        check_av_full_scale_policy(self.av_full_scale)
        b = self.av_adc_bits
        if isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= AV_ADC_BITS_MAX:
            raise ValueError(f"av_adc_bits (the A·V column ADC's signed bits) must be an integer in 2…{AV_ADC_BITS_MAX}, "
                             f"got {b!r}")
        return self


def set_layout(config: LmEvalConfig) -> dict:
    """Which windows a run scores, which fit its ranges, and which chip seeds it draws.

    With n = ``config.windows`` and c = ``config.chips``: the evaluated set (``"eval"``) scores
    windows 0 … n−1, fits on n … 2n−1 and draws chips 0 … c−1; the selection set (``"select"``)
    scores 2n … 3n−1, fits on 3n … 4n−1 and draws chips 10 … 10+c−1. Windows are disjoint token
    slices of one text, so at the same window length the sets share no token (and c ≤ 10
    keeps their chips apart). Returns {"scored": [...], "calibration": [...], "chips": [...]}.
    """
    n = config.windows
    first = 0 if config.text_set == "eval" else 2 * n
    first_chip = 0 if config.text_set == "eval" else SELECTION_FIRST_CHIP
    return {"scored": list(range(first, first + n)), "calibration": list(range(first + n, first + 2 * n)),
            "chips": list(range(first_chip, first_chip + config.chips))}


def float_topk_attention(q, k, v, mask, top_k: int):
    """The k largest float scores of each row among its visible keys, exact softmax over them
    (ties to the lower key index), times v: top-k without quantisation."""
    scores = (q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64))
    scores = np.where(mask, scores, -np.inf)
    order = np.argsort(-scores, axis=-1, kind="stable")
    kept = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(kept, order[..., :top_k], True, axis=-1)
    kept &= np.broadcast_to(mask, kept.shape)
    s = np.where(kept, scores, -np.inf)
    s_max = np.max(s, axis=-1, keepdims=True)
    e = np.where(kept, np.exp(s - np.where(np.isfinite(s_max), s_max, 0.0)), 0.0)
    a = e / np.maximum(e.sum(axis=-1, keepdims=True), 1e-300)
    return a @ v.astype(np.float64)


def _fit_ranges(model, windows: np.ndarray, config: LmEvalConfig, macro_variant: dict | None = None,
                artefact: str | None = None) -> dict:
    """{k: {layer: AttentionRanges}} fitted on the calibration windows (exact forward), with ADC
    windows within the ramp limits of the chip (``macro_variant``'s, default the artefact's)."""
    from topkima.behavioral import AttentionRanges
    from topkima.behavioral.models.smollm2 import dense_attention
    from topkima.studies.circuit_whatif import variant_ramp_limits
    limits = variant_ramp_limits(macro_variant, artefact)
    fitted: dict = {k: {} for k in config.ks}

    def capture(q, k, v, mask, layer):
        for top_k in config.ks:
            fitted[top_k][layer] = AttentionRanges.fit(
                q, k, v, top_k=top_k, mask=mask, policy=config.key_policy,
                window_top_quantile=config.window_top_quantile, window_bottom_quantile=config.window_bottom_quantile,
                ramp_limits=limits, av_full_scale=config.av_full_scale)
        return dense_attention(q, k, v, mask, layer)
    model.forward(windows, attention=capture)
    return fitted


def _attention(mode: str, top_k: int, ranges: dict, hardware, rng, stats: dict, key_order: str = "token",
               readback: str = "ramp-code", candidates: int | None = None):
    """The model's attention callable for one run; counts rows short of k, rows whose last grant
    was a tie and α."""
    from topkima.behavioral import topkima_attention

    def attention(q, k, v, mask, layer):
        if mode == "float-topk":
            return float_topk_attention(q, k, v, mask, top_k)
        out, st = topkima_attention(q, k, v, top_k=top_k, mask=mask, mode=mode, macro=hardware, rng=rng,
                                    ranges=ranges[layer], return_stats=True,
                                    **({"key_order": key_order, "readback": readback, "candidates": candidates}
                                       if mode == "topkima" else {}))
        stats["rows"] += st.n_rows
        stats["short"] += st.n_rows_short
        stats["kth_ties"] += st.n_rows_kth_tie
        stats["kept"] += st.n_kept
        stats["kept_below_kth"] += st.n_kept_below_kth
        if st.alpha is not None:
            stats["alpha_sum"] += float(np.sum(st.alpha))
        return out
    return attention


def window_task(mode: str, top_k: int, chip: int | None, window: int, ids: list, ranges_json: list | None,
                macro_variant: dict | None = None, artefact: str | None = None, key_order: str = "token",
                readback: str = "ramp-code", candidates: int | None = None, av_adc_bits: int = 5) -> dict:
    """One shard of a run: evaluated window ``window`` (its token ``ids``) through ``mode`` (on chip
    ``chip`` in topkima mode) under the frozen ranges (``ranges_json``: per layer,
    :meth:`AttentionRanges.to_json`). Sums of the window's predictions, so that shards add up.

    Everything random is fixed by (k, mode, chip, window): the chip's mismatch by ``chip`` alone,
    the comparator noise by a generator of its own per window. A window is always one forward of
    batch 1, so any split of the windows over workers gives the same numbers, bit for bit.
    ``macro_variant``: what-if changes of the chip (:func:`topkima.studies.circuit_whatif.variant_macro`)
    of ``artefact``'s macro (a calibration artefact's path; None: the committed one). ``key_order``,
    ``readback``, ``candidates``: how topkima mode writes the keys, how many grants it takes and how it reads
    the kept scores back, ``av_adc_bits`` its A·V ADC's bits (:class:`LmEvalConfig`).
    """
    from topkima.behavioral import AttentionRanges, TopkimaHardware
    from topkima.behavioral.models.perplexity import next_token_nll
    t0 = time.perf_counter()
    model = process_models.smollm2()
    stats = {"rows": 0, "short": 0, "kth_ties": 0, "kept": 0, "kept_below_kth": 0, "alpha_sum": 0.0}
    if mode == "exact":
        attention = None
    else:
        ranges = {layer: AttentionRanges.from_json(r) for layer, r in enumerate(ranges_json)}
        hardware = None
        if chip is not None:
            macro = None
            if macro_variant or artefact:
                from topkima.studies.circuit_whatif import variant_macro
                macro = variant_macro(**(macro_variant or {}), artefact=artefact)
            hardware = TopkimaHardware(macro, chip_seed=chip, av_adc_bits=av_adc_bits)
        rng = np.random.default_rng([top_k, LM_MODES.index(mode), 0 if chip is None else chip, window])
        attention = _attention(mode, top_k, ranges, hardware, rng, stats, key_order, readback, candidates)
    window_ids = np.asarray(ids, dtype=np.int64)[None]
    with warnings.catch_warnings():
        # frozen ranges: a per-call range (the causal-leak warning) would be an error here
        warnings.filterwarnings("error", message="the mask hides")
        nll, hits = next_token_nll(model.forward(window_ids, attention=attention), window_ids)
    return {"window": window, "nll_sum": float(nll.sum()), "hits": int(hits.sum()), "predictions": int(nll.size),
            "rows": stats["rows"], "short": stats["short"], "kth_ties": stats["kth_ties"],
            "kept": stats["kept"], "kept_below_kth": stats["kept_below_kth"],
            "alpha_sum": stats["alpha_sum"],
            "seconds": round(time.perf_counter() - t0, 1)}


def _entry(mode: str, top_k: int, chip, shards: list[dict]) -> dict:
    """One run's figures from its windows' sums (added in window order: the same for any sharding)."""
    shards = sorted(shards, key=lambda r: r["window"])
    nll = sum(r["nll_sum"] for r in shards)
    n = sum(r["predictions"] for r in shards)
    rows, short = sum(r["rows"] for r in shards), sum(r["short"] for r in shards)
    alpha = sum(r["alpha_sum"] for r in shards)
    ties = sum(r.get("kth_ties", 0) for r in shards)
    kept, below = sum(r.get("kept", 0) for r in shards), sum(r.get("kept_below_kth", 0) for r in shards)
    return {"mode": mode, "k": top_k, "chip": chip, "perplexity": float(np.exp(nll / n)),
            "next_token_accuracy": sum(r["hits"] for r in shards) / n, "predictions": n,
            "rows_short_of_k": short / rows if rows else None,
            "alpha_mean": alpha / rows if mode == "topkima" and rows else None,
            # topkima: rows whose k-th grant the arbiter's address order decided (a tie), of all rows
            "rows_kth_grant_tie": ties / rows if mode == "topkima" and rows else None,
            # topkima: kept keys scoring below their row's k-th best quantised score (not in any top-k)
            "kept_below_kth": below / kept if mode == "topkima" and kept else None,
            "seconds": round(sum(r["seconds"] for r in shards), 1)}   # summed over the windows' tasks


def run_lm_eval(out_dir: str | Path, config: LmEvalConfig = LmEvalConfig(), *, workers: int = 1,
                scheduler: str | None = None, scheduler_timeout_s: float = 5.0, macro_variant: dict | None = None,
                artefact: str | Path | None = None, log=print) -> dict:
    """The whole evaluation; returns (and writes) the summary. See the module docstring.

    ``workers``: local worker processes (0: this process); ``scheduler``: a Dask scheduler's
    address (then ``workers`` is ignored). The work is cut into one task per (run, window); the
    figures do not depend on where or in which order the tasks ran. ``macro_variant``: a
    what-if chip (:mod:`topkima.studies.circuit_whatif`); part of the runs' identity.
    ``artefact``: the calibration artefact of topkima mode's chips and of the ramp limits their ADC
    windows are fitted within (None: the committed one; e.g. another design's from `topkima
    calibrate --design`); a variant then scales that artefact's spreads. Its SHA-256 is part of
    the runs' identity.
    """
    from topkima.studies.montecarlo.execution import connect

    config = config.validated()
    if artefact is not None:
        from topkima.calibration import load_calibration
        load_calibration(artefact)      # a missing or invalid artefact stops here, with its own message
        artefact = str(Path(artefact).resolve())
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be an integer ≥ 0, got {workers!r}")
    client = connect(scheduler, scheduler_timeout_s) if scheduler else None   # fail fast, before the model loads
    try:
        return _evaluate(Path(out_dir), config, workers, client, scheduler, macro_variant, artefact, log)
    finally:
        if client is not None:
            client.close()


def _evaluate(out: Path, config: LmEvalConfig, workers: int, client, scheduler, macro_variant, artefact, log) -> dict:
    from topkima.behavioral.models.review_text import amazon_token_windows
    from topkima.calibration.artefact import default_artefact_path
    from topkima.circuits.jobs import Progress
    from topkima.studies.montecarlo.execution import run_tasks
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    model = process_models.smollm2()
    layout = set_layout(config)
    scored_windows = layout["scored"]
    evaluated = amazon_token_windows(model.tokenize, config.tokens, config.windows, scored_windows[0])
    calibration = amazon_token_windows(model.tokenize, config.tokens, config.windows, layout["calibration"][0])
    identity = {"config": asdict(config), "code": code_version(),
                "text": hashlib.sha256(np.ascontiguousarray(evaluated).tobytes()
                                       + np.ascontiguousarray(calibration).tobytes()).hexdigest(),
                "artefact": hashlib.sha256(Path(artefact or default_artefact_path()).read_bytes()).hexdigest()}
    if macro_variant:
        identity["macro_variant"] = macro_variant
    runs = out / "runs" / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    runs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(runs / "identity.json", identity)
    log(f"lm-eval ({config.text_set} set): windows {_span(layout['scored'])} of {config.tokens} tokens scored, "
        f"windows {_span(layout['calibration'])} fit the ranges ({config.key_policy} key scales)"
        + (f", chips {_span(layout['chips'])}" if "topkima" in config.modes else ""))
    if config.text_set == "select":
        log("lm-eval: the selection set is for choosing policies only; its figures are not evidence")

    planned = []            # (name, mode, k, chip) in report order
    for top_k in config.ks:
        for mode in config.modes:
            if mode == "exact" and top_k != config.ks[0]:
                continue
            for chip in (layout["chips"] if mode == "topkima" else [None]):
                planned.append((f"{mode}_k{top_k}" + ("" if chip is None else f"_chip{chip}"), mode, top_k, chip))
    finished = {name: json.loads((runs / f"{name}.json").read_text())
                for name, *_ in planned if (runs / f"{name}.json").exists()}
    shards: dict[str, dict[int, dict]] = {name: {} for name, *_ in planned}
    tasks = []
    ranges_json = None
    for name, mode, top_k, chip in planned:
        if name in finished:
            continue
        for i, w in enumerate(scored_windows):
            path = runs / f"{name}_w{w}.json"
            if path.exists():
                shards[name][w] = json.loads(path.read_text())
                continue
            if ranges_json is None and mode != "exact":
                ranges_json = _stored_ranges(runs, model, calibration, config, macro_variant, artefact)
            tasks.append((f"{name}_w{w}", window_task,
                          (mode, top_k, chip, w, evaluated[i].tolist(),
                           None if mode == "exact" else ranges_json[str(top_k)], macro_variant, artefact,
                           config.key_order, config.readback, config.candidates, config.av_adc_bits)))

    def store(key: str, result: dict) -> None:
        name = key.rsplit("_w", 1)[0]
        write_json_atomic(runs / f"{key}.json", result)
        shards[name][result["window"]] = result

    where = f"Dask scheduler {scheduler}" if client is not None else (
        f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "this process")
    if tasks:
        log(f"lm-eval: {len(tasks)} window runs to do on {where}")
    run_tasks(tasks, store, workers=workers, client=client,
              progress=Progress(len(tasks), log, prefix="lm-eval: ", what="window runs", every_s=30.0))
    results = []
    for name, mode, top_k, chip in planned:
        if name not in finished:
            entry = _entry(mode, top_k, chip, list(shards[name].values()))
            write_json_atomic(runs / f"{name}.json", entry)
            finished[name] = entry
            log(f"  {name:22s} perplexity {entry['perplexity']:9.2f}, next-token accuracy "
                f"{100 * entry['next_token_accuracy']:5.2f} %")
        results.append(finished[name])
    summary = {"study": "topkima lm-eval (see topkima.studies.lm_eval)", "model": "SmolLM2-135M-Instruct Q4_1",
               "text": "VADER amazonReviewSnippets_GroundTruth.txt as running text",
               "set": config.text_set, "purpose": SET_PURPOSE[config.text_set],
               "evaluated_windows": layout["scored"], "calibration_windows": layout["calibration"],
               "chip_seeds": layout["chips"] if "topkima" in config.modes else [],
               "config": asdict(config), "macro_variant": macro_variant, "artefact": artefact,
               "results": results,
               "chip_spread": _chip_spread(results), "execution": {"where": where, "window_runs": len(tasks)},
               "wall_s": round(time.time() - t_start, 1)}
    write_json_atomic(out / "summary.json", summary)
    _plot(results, out / "perplexity_vs_k.png")
    return summary


def _stored_ranges(runs: Path, model, calibration: np.ndarray, config: LmEvalConfig,
                   macro_variant: dict | None = None, artefact: str | None = None) -> dict:
    """{k: [per layer AttentionRanges.to_json()]}: fitted once on the calibration windows and kept
    in ``runs/ranges.json`` (a resumed run reuses them)."""
    path = runs / "ranges.json"
    if path.exists():
        return json.loads(path.read_text())
    fitted = _fit_ranges(model, calibration, config, macro_variant, artefact)
    stored = {str(k): [fitted[k][layer].to_json() for layer in sorted(fitted[k])] for k in fitted}
    write_json_atomic(path, stored)
    return stored


def _span(values: list[int]) -> str:
    return f"{values[0]}" if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _chip_spread(results: list[dict]) -> dict:
    """Per k: the topkima chips' median, min and max perplexity."""
    spread = {}
    for top_k in sorted({r["k"] for r in results if r["mode"] == "topkima"}):
        p = [r["perplexity"] for r in results if r["mode"] == "topkima" and r["k"] == top_k]
        spread[str(top_k)] = {"median": float(np.median(p)), "min": float(np.min(p)), "max": float(np.max(p)),
                              "chips": len(p)}
    return spread


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in LM_MODES:
        rows = [r for r in results if r["mode"] == mode]
        if not rows:
            continue
        if mode == "exact":
            ax.axhline(rows[0]["perplexity"], color="k", ls="--", lw=1, label="exact")
            continue
        ks = sorted({r["k"] for r in rows})
        med = [np.median([r["perplexity"] for r in rows if r["k"] == k]) for k in ks]
        lo = [min(r["perplexity"] for r in rows if r["k"] == k) for k in ks]
        hi = [max(r["perplexity"] for r in rows if r["k"] == k) for k in ks]
        ax.errorbar(ks, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], marker="o", capsize=3,
                    label=mode + (" (median, min–max of chips)" if mode == "topkima" else ""))
    ax.set_xlabel("k (keys kept per row)")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("SmolLM2-135M, Amazon review text")
    save_figure_atomic(fig, path, close=True, dpi=120)
