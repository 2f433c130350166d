"""`topkima lm-eval`: a causal decoder LM (SmolLM2-135M-Instruct) with Topkima attention.

Text: the VADER archive's Amazon review snippets as running text (a registry package, hash
checked; :mod:`topkima.behavioral.models.review_text`), cut into disjoint windows of ``tokens``
tokens. Windows 0 … n−1 are **evaluated**; windows n … 2n−1 are the **calibration** windows, used
only to fit each layer's frozen :class:`~topkima.behavioral.ranges.AttentionRanges` (key and
value scales, ADC windows, A·V full scale) — the evaluated text never sets a range, and every row
sees only its past (causal mask, frozen ranges: ``tests/behavioral/test_ranges.py``).

Per (mode, k) — and per chip in ``topkima`` mode — it reports perplexity and next-token accuracy
over the evaluated windows, the fraction of rows that kept fewer than k keys and (topkima) the
early-stop fraction α. Modes: ``exact``; ``float-topk`` (the k largest float scores, exact
softmax over them: top-k without quantisation); and the quantised modes of
:func:`~topkima.behavioral.topkima_attention`.

Each finished run is a JSON file under ``out/runs/<identity>/`` (atomic), so an interrupted
evaluation resumes; ``summary.json`` and ``perplexity_vs_k.png`` are written at the end.
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

LM_MODES = ("exact", "float-topk", "quantized", "topk", "subtopk", "topkima")
TOKEN_CHOICES = (256, 512, 1024)


@dataclass(frozen=True)
class LmEvalConfig:
    """What `topkima lm-eval` evaluates. Every field is part of its resumable runs' identity."""

    tokens: int = 256                        #: tokens per window (256, 512 or 1024)
    windows: int = 4                         #: evaluated windows (as many more fit the ranges)
    ks: tuple[int, ...] = (5,)               #: keys kept per query row
    modes: tuple[str, ...] = LM_MODES        #: attention modes (a subset of LM_MODES)
    chips: int = 3                           #: chips (mismatch draws, seeds 0 … chips−1) in topkima mode
    # the defaults below were chosen on windows 8–15 with chips 10 and 11 (docs/language-model.md),
    # never on the windows evaluated (0 … windows−1) or the chips reported (0 … chips−1)
    key_policy: str = "channel"              #: frozen key scales: "sequence-head" or "channel"
    window_top_quantile: float = 1.0         #: ADC window top: this quantile of the rows' best scores
    window_bottom_quantile: float = 0.0      #: ADC window bottom: this quantile of their k-th best

    def validated(self) -> "LmEvalConfig":
        """This configuration, or ValueError naming the field that is wrong."""
        from topkima.behavioral import KEY_SCALE_POLICIES
        if self.tokens not in TOKEN_CHOICES:
            raise ValueError(f"tokens must be one of {TOKEN_CHOICES}, got {self.tokens!r}")
        for name in ("windows", "chips"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks!r}")
        if len(set(self.ks)) != len(self.ks) or len(set(self.modes)) != len(self.modes):
            raise ValueError(f"ks and modes must not repeat, got ks {self.ks!r}, modes {self.modes!r}")
        unknown = [m for m in self.modes if m not in LM_MODES]
        if unknown or not self.modes:
            raise ValueError(f"modes must be some of {', '.join(LM_MODES)}, got {self.modes!r}")
        if self.key_policy not in KEY_SCALE_POLICIES:
            raise ValueError(f"key_policy must be one of {', '.join(KEY_SCALE_POLICIES)}, got {self.key_policy!r}")
        if not 0.0 <= self.window_bottom_quantile <= self.window_top_quantile <= 1.0:
            raise ValueError("need 0 ≤ window_bottom_quantile ≤ window_top_quantile ≤ 1")
        return self


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


def _fit_ranges(model, windows: np.ndarray, config: LmEvalConfig) -> dict:
    """{k: {layer: AttentionRanges}} fitted on the calibration windows (exact forward)."""
    from topkima.behavioral import AttentionRanges
    from topkima.behavioral.models.smollm2 import dense_attention
    fitted: dict = {k: {} for k in config.ks}

    def capture(q, k, v, mask, layer):
        for top_k in config.ks:
            fitted[top_k][layer] = AttentionRanges.fit(
                q, k, v, top_k=top_k, mask=mask, policy=config.key_policy,
                window_top_quantile=config.window_top_quantile, window_bottom_quantile=config.window_bottom_quantile)
        return dense_attention(q, k, v, mask, layer)
    model.forward(windows, attention=capture)
    return fitted


def _attention(mode: str, top_k: int, ranges: dict, hardware, rng, stats: dict):
    """The model's attention callable for one run; counts rows short of k and α."""
    from topkima.behavioral import topkima_attention

    def attention(q, k, v, mask, layer):
        if mode == "float-topk":
            return float_topk_attention(q, k, v, mask, top_k)
        out, st = topkima_attention(q, k, v, top_k=top_k, mask=mask, mode=mode, macro=hardware, rng=rng,
                                    ranges=ranges[layer], return_stats=True)
        stats["rows"] += st.n_rows
        stats["short"] += st.n_rows_short
        if st.alpha is not None:
            stats["alpha_sum"] += float(np.sum(st.alpha))
        return out
    return attention


def run_lm_eval(out_dir: str | Path, config: LmEvalConfig = LmEvalConfig(), *, log=print) -> dict:
    """The whole evaluation; returns (and writes) the summary. See the module docstring."""
    from topkima.behavioral import TopkimaHardware
    from topkima.behavioral.models.perplexity import perplexity
    from topkima.behavioral.models.review_text import amazon_token_windows
    from topkima.behavioral.models.smollm2 import SmolLM2
    from topkima.calibration.artefact import default_artefact_path

    config = config.validated()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    model = SmolLM2.load()
    evaluated = amazon_token_windows(model.tokenize, config.tokens, config.windows, 0)
    calibration = amazon_token_windows(model.tokenize, config.tokens, config.windows, config.windows)
    identity = {"config": asdict(config), "code": code_version(),
                "text": hashlib.sha256(np.ascontiguousarray(evaluated).tobytes()
                                       + np.ascontiguousarray(calibration).tobytes()).hexdigest(),
                "artefact": hashlib.sha256(default_artefact_path().read_bytes()).hexdigest()}
    runs = out / "runs" / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    runs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(runs / "identity.json", identity)
    log(f"lm-eval: {config.windows} windows of {config.tokens} tokens evaluated, {config.windows} others fit "
        f"the ranges ({config.key_policy} key scales)")
    ranges = None
    results = []
    for top_k in config.ks:
        for mode in config.modes:
            if mode == "exact" and top_k != config.ks[0]:
                continue
            chips = range(config.chips) if mode == "topkima" else [None]
            for chip in chips:
                name = f"{mode}_k{top_k}" + ("" if chip is None else f"_chip{chip}")
                path = runs / f"{name}.json"
                if path.exists():
                    results.append(json.loads(path.read_text()))
                    continue
                if ranges is None:
                    ranges = _fit_ranges(model, calibration, config)
                t0 = time.time()
                stats = {"rows": 0, "short": 0, "alpha_sum": 0.0}
                if mode == "exact":
                    attention = None
                else:
                    hardware = TopkimaHardware(chip_seed=chip) if chip is not None else None
                    rng = np.random.default_rng([top_k, LM_MODES.index(mode), 0 if chip is None else chip])
                    attention = _attention(mode, top_k, ranges[top_k], hardware, rng, stats)
                with warnings.catch_warnings():
                    # frozen ranges: a per-call range (the causal-leak warning) would be an error here
                    warnings.filterwarnings("error", message="the mask hides")
                    r = perplexity(model, evaluated, attention=attention, batch_size=config.windows)
                entry = {"mode": mode, "k": top_k, "chip": chip, "perplexity": r.perplexity,
                         "next_token_accuracy": r.next_token_accuracy, "predictions": r.n_predictions,
                         "rows_short_of_k": stats["short"] / stats["rows"] if stats["rows"] else None,
                         "alpha_mean": stats["alpha_sum"] / stats["rows"] if mode == "topkima" and stats["rows"] else None,
                         "seconds": round(time.time() - t0, 1)}
                write_json_atomic(path, entry)
                results.append(entry)
                log(f"  {name:22s} perplexity {r.perplexity:9.2f}, next-token accuracy "
                    f"{100 * r.next_token_accuracy:5.2f} % ({entry['seconds']:.0f} s)")
    summary = {"study": "topkima lm-eval (see topkima.studies.lm_eval)", "model": "SmolLM2-135M-Instruct Q4_1",
               "text": "VADER amazonReviewSnippets_GroundTruth.txt as running text",
               "evaluated_windows": list(range(config.windows)),
               "calibration_windows": list(range(config.windows, 2 * config.windows)),
               "config": asdict(config), "results": results, "chip_spread": _chip_spread(results),
               "wall_s": round(time.time() - t_start, 1)}
    write_json_atomic(out / "summary.json", summary)
    _plot(results, out / "perplexity_vs_k.png")
    return summary


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
