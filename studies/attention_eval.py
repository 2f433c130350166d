"""`topkima attention`: all-MiniLM-L6-v2 with Topkima attention on the VADER movie-review probe.

The task metric of ../shared/DATA.md: labels sign(rating) for |rating| ≥ 0.5 (10,072 sentences,
Hutto & Gilbert, ICWSM 2014; Pang & Lee 2005), a fixed-seed 70/30 split, a logistic-regression
probe trained on the **exact** model's embeddings, then the test split re-embedded with each
attention mode. Reported per mode: accuracy, flip rate and McNemar p against exact, mean
embedding cosine to exact, attention-output error per layer, and (topkima) the early-stop
fraction α on the real scores. A k sweep runs the topk and topkima modes at k ∈ {1, 2, 5, 10, 20}.

Every finished (mode, k) run is saved in ``--out`` (``runs/*.npz``, atomic); an interrupted
evaluation resumes from them. ``summary.json`` and the plots are written at the end.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_json_atomic
from topkima.studies import movie_reviews, probe as probes
from topkima.studies.adc_windows import N_WINDOW_SENTENCES, calibrate_windows
from topkima.studies.code_version import code_version
from topkima.studies.outputs import save_figure_atomic, save_npz_atomic

EVAL_MODES = ("quantized", "topk", "subtopk", "topkima")
K_SWEEP = (1, 2, 5, 10, 20)
SWEEP_MODES = ("topk", "topkima")


@dataclass(frozen=True)
class AttentionEvalConfig:
    """What `topkima attention` evaluates. Every field is part of its resumable runs' identity."""

    k: int = 5                              #: keys kept per query row (of every attention mode)
    modes: tuple[str, ...] = EVAL_MODES     #: attention modes compared with exact (a subset of EVAL_MODES)
    limit: int | None = None                #: sentences used (70/30 train/test; None: all 10,072), ≥ 10
    seed: int = 0                           #: split, sentence subset, chip mismatch and comparator-noise seed
    sweep: bool = True                      #: also run the topk and topkima modes at k ∈ K_SWEEP
    batch_size: int = 32                    #: sentences per MiniLM forward (speed only; results do not depend on it)

    def validated(self) -> "AttentionEvalConfig":
        """This configuration, or ValueError naming the field that is wrong."""
        for name in ("k", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0, got {self.seed!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 10):
            raise ValueError(f"--limit must be at least 10 sentences, got {self.limit}")
        unknown = [m for m in self.modes if m not in EVAL_MODES]
        if unknown or not self.modes:
            raise ValueError(f"modes must be some of {', '.join(EVAL_MODES)}, got {self.modes!r}")
        return self


class _LayerStats:
    """Accumulates per-layer statistics of one (mode, k) run."""

    def __init__(self, n_layers: int):
        self.err_num = np.zeros(n_layers)
        self.err_den = np.zeros(n_layers)
        self.alpha_sum = np.zeros(n_layers)
        self.rows = np.zeros(n_layers)
        self.short = np.zeros(n_layers)
        self.energy_j = np.zeros(n_layers)
        self.alphas: list[np.ndarray] = []

    def as_dict(self) -> dict:
        rows = np.maximum(self.rows, 1)
        return {"attention_output_rel_error": (np.sqrt(self.err_num / np.maximum(self.err_den, 1e-300))).tolist(),
                "alpha_mean": (self.alpha_sum / rows).tolist() if self.alphas else None,
                "rows_with_fewer_than_k_kept": (self.short / rows).tolist(),
                "qk_energy_j": self.energy_j.tolist() if self.alphas else None}


def _hook(mode: str, top_k: int, hardware, rng, stats: _LayerStats, windows=None):
    """The MiniLM attention callable for one mode: topkima_attention plus statistics.
    ``windows``: {layer: per-head (AdcRange, scale)} frozen ADC windows (topkima mode)."""
    from topkima.behavioral import dense_softmax_attention, topkima_attention

    def attention(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]   # padded rows are not queries either
        out, st = topkima_attention(q, k, v, top_k=top_k, mask=m, mode=mode, macro=hardware, rng=rng,
                                    return_stats=True, adc_range=None if windows is None else windows[layer])
        exact = dense_softmax_attention(q, k, v, m)
        real = mask[:, None, :, None]
        stats.err_num[layer] += float((((out - exact) ** 2) * real).sum())
        stats.err_den[layer] += float(((exact ** 2) * real).sum())
        n_real = float(mask.sum()) * q.shape[1]
        stats.rows[layer] += n_real
        stats.short[layer] += st.n_rows_short
        if st.alpha is not None:
            a = st.alpha[np.broadcast_to(mask[:, None, :], st.alpha.shape)]
            stats.alpha_sum[layer] += float(a.sum())
            stats.energy_j[layer] += st.energy_j
            stats.alphas.append(a.astype(np.float32))
        return out

    return attention


def run_evaluation(out_dir: str | Path, config: AttentionEvalConfig = AttentionEvalConfig(), *, log=print) -> dict:
    """The whole probe evaluation; returns (and writes) the summary. See the module docstring."""
    from topkima.behavioral import TopkimaHardware
    from topkima.behavioral.minilm import MiniLM

    config = config.validated()
    k, modes, limit, seed = config.k, config.modes, config.limit, config.seed
    sweep, batch_size = config.sweep, config.batch_size
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = MiniLM.load()
    reviews = movie_reviews.load_movie_reviews(movie_reviews.fetch_movie_reviews())
    train, test = movie_reviews.split_train_test(len(reviews), test_fraction=0.3, seed=seed)
    if limit is not None:
        n_test = max(3, round(0.3 * limit))
        pick = np.random.default_rng([seed, 1])   # a random subset of each side of the split
        train = np.sort(pick.choice(train, min(limit - n_test, len(train)), replace=False))
        test = np.sort(pick.choice(test, min(n_test, len(test)), replace=False))
    texts = reviews.texts
    y = np.asarray(reviews.labels)
    log(f"{len(train)} training and {len(test)} test sentences (seed {seed})")

    # finished runs are kept per configuration: another split, limit, seed or artefact starts afresh
    from topkima.calibration.artefact import default_artefact_path
    import hashlib
    identity = {"seed": seed, "limit": limit, "batch_size": batch_size, "code": code_version(),
              "window_sentences": N_WINDOW_SENTENCES, "train": hashlib.sha256(train.tobytes()).hexdigest(),
              "test": hashlib.sha256(test.tobytes()).hexdigest(),
              "artefact": hashlib.sha256(default_artefact_path().read_bytes()).hexdigest()}
    runs_dir = out / "runs" / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    runs_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(runs_dir / "config.json", identity, indent=1)

    def cached(name: str, fn):
        path = runs_dir / f"{name}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as f:
                return {key: f[key] for key in f.files}
        t = time.time()
        result = fn()
        save_npz_atomic(path, **result)
        log(f"  {name}: {time.time() - t:.1f} s")
        return result

    exact_train = cached("exact_train", lambda: {"emb": model.embed([texts[i] for i in train], batch_size=batch_size)})
    exact_test = cached("exact_test", lambda: {"emb": model.embed([texts[i] for i in test], batch_size=batch_size)})
    probe = probes.LogisticProbe.fit(exact_train["emb"], y[train])
    pred_exact = probe.predict(exact_test["emb"])
    y_test = y[test]
    correct_exact = pred_exact == y_test
    hardware = TopkimaHardware(chip_seed=seed)
    lengths = model.tokenize([texts[i] for i in test]).lengths

    window_texts = [texts[i] for i in train[np.random.default_rng([seed, 2]).permutation(len(train))[
        :N_WINDOW_SENTENCES]]]
    window_cache: dict = {}

    def windows_for(kk: int):
        if not window_cache:
            window_cache.update(calibrate_windows(model, window_texts, sorted(set(K_SWEEP) | {k}), batch_size))
        return window_cache[kk]

    def run(mode: str, kk: int) -> dict:
        stats = _LayerStats(model.n_layers)
        rng = np.random.default_rng([seed, kk, EVAL_MODES.index(mode) if mode in EVAL_MODES else 9])
        windows = windows_for(kk) if mode == "topkima" else None
        emb = model.embed([texts[i] for i in test], attention=_hook(mode, kk, hardware, rng, stats, windows),
                          batch_size=batch_size)
        layer = stats.as_dict()
        arrays = {"emb": emb, "layer_json": np.array(json.dumps(layer))}
        if stats.alphas:
            arrays["alpha"] = np.concatenate(stats.alphas)
        return arrays

    def report(arrays: dict, kk: int) -> dict:
        emb = arrays["emb"]
        pred = probe.predict(emb)
        correct = pred == y_test
        cos = np.sum(emb * exact_test["emb"], axis=1) / (
            np.linalg.norm(emb, axis=1) * np.linalg.norm(exact_test["emb"], axis=1))
        layer = json.loads(str(arrays["layer_json"]))
        entry = {"k": kk, "accuracy": probes.accuracy(pred, y_test),
                 "flip_rate": probes.flip_rate(pred, pred_exact),
                 "mcnemar_p": probes.mcnemar_p(correct_exact, correct),
                 "embedding_cosine": float(np.mean(cos)), "per_layer": layer,
                 "alpha_mean": float(np.mean(arrays["alpha"])) if "alpha" in arrays else None}
        return entry

    results: dict[str, dict] = {}
    for mode in modes:
        results[mode] = report(cached(f"{mode}_k{k}", lambda mode=mode: run(mode, k)), k)
        r = results[mode]
        log(f"  {mode:9s} k={k}: accuracy {100 * r['accuracy']:.2f} %, flips {100 * r['flip_rate']:.2f} %, "
            f"McNemar p {r['mcnemar_p']:.3g}, cosine {r['embedding_cosine']:.4f}"
            + (f", alpha {r['alpha_mean']:.3f}" if r["alpha_mean"] is not None else ""))
    sweep_results: dict[str, list] = {}
    if sweep:
        for mode in SWEEP_MODES:
            sweep_results[mode] = []
            for kk in K_SWEEP:
                entry = report(cached(f"{mode}_k{kk}", lambda mode=mode, kk=kk: run(mode, kk)), kk)
                sweep_results[mode].append(entry)
                log(f"  sweep {mode:8s} k={kk:2d}: accuracy {100 * entry['accuracy']:.2f} %, "
                    f"flips {100 * entry['flip_rate']:.2f} %")
    n = len(test)
    acc_exact = probes.accuracy(pred_exact, y_test)
    summary = {
        "task": "VADER movie-review snippets (Hutto & Gilbert 2014), sign(rating) for |rating| >= 0.5, "
                "logistic probe on exact all-MiniLM-L6-v2 embeddings",
        "seed": seed, "k": k, "n_train": int(len(train)), "n_test": int(n),
        "tokens_per_test_sentence_mean": float(np.mean(lengths)),
        "k_over_row_length_mean": float(np.mean(np.minimum(k / lengths, 1.0))),
        "accuracy": {"exact": acc_exact, **{m: r["accuracy"] for m, r in results.items()}},
        "accuracy_se": {"exact": probes.binomial_se(acc_exact, n)},
        "flip_rate": {m: r["flip_rate"] for m, r in results.items()},
        "mcnemar_p": {m: r["mcnemar_p"] for m, r in results.items()},
        "embedding_cosine": {m: r["embedding_cosine"] for m, r in results.items()},
        "alpha_mean": {m: r["alpha_mean"] for m, r in results.items() if r["alpha_mean"] is not None},
        "per_layer": {m: r["per_layer"] for m, r in results.items()},
        "k_sweep": {m: [{key: e[key] for key in ("k", "accuracy", "flip_rate", "mcnemar_p", "embedding_cosine",
                                                 "alpha_mean")} for e in entries]
                    for m, entries in sweep_results.items()},
        "wall_time_s": round(time.time() - t0, 1),
    }
    write_json_atomic(out / "summary.json", summary, indent=1)
    _plots(out, summary, cached_alpha=runs_dir / f"topkima_k{k}.npz")
    log(f"wrote {out / 'summary.json'} and plots ({summary['wall_time_s']:.0f} s)")
    return summary


def _plots(out: Path, summary: dict, cached_alpha: Path) -> None:
    """accuracy_vs_k.png and alpha_histogram.png (written atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        save_figure_atomic(fig, out / name, dpi=120, close=True)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.axhline(100 * summary["accuracy"]["exact"], color="k", ls="--", label="exact")
    for mode, entries in summary["k_sweep"].items():
        ax.plot([e["k"] for e in entries], [100 * e["accuracy"] for e in entries], "o-", label=mode)
    ax.set_xscale("log")
    ax.set_xticks(list(K_SWEEP), [str(x) for x in K_SWEEP])
    ax.set_xlabel("k (keys kept per query row)")
    ax.set_ylabel("probe accuracy (%)")
    ax.set_title(f"VADER movie reviews, {summary['n_test']} test sentences")
    ax.legend()
    fig.tight_layout()
    save(fig, "accuracy_vs_k.png")
    if cached_alpha.exists():
        with np.load(cached_alpha, allow_pickle=False) as f:
            alpha = f["alpha"] if "alpha" in f.files else None
        if alpha is not None and alpha.size:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.hist(alpha, bins=np.arange(0, 33) / 32 + 1 / 64, color="tab:blue")
            ax.set_xlabel("α = ramp cycles used / 32")
            ax.set_ylabel("query rows")
            ax.set_title(f"early stop on real scores (k = {summary['k']}), mean α = {alpha.mean():.3f}")
            fig.tight_layout()
            save(fig, "alpha_histogram.png")
