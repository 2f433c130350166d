"""`topkima attention`: all-MiniLM-L6-v2 with Topkima attention on the VADER movie-review probe.

The task metric of ../shared/DATA.md: labels sign(rating) for |rating| ≥ 0.5 (10,072 sentences,
Hutto & Gilbert, ICWSM 2014; Pang & Lee 2005), a fixed-seed 70/30 split, a logistic-regression
probe trained on the **exact** model's embeddings, then the test split re-embedded with each
attention mode. Reported per mode: accuracy, flip rate and McNemar p against exact, mean
embedding cosine to exact, attention-output error per layer, and (topkima) the early-stop
fraction α on the real scores, per chip. A k sweep runs the topk and topkima modes at
k ∈ {1, 2, 5, 10, 20}.

Ranges: by default every layer's key and value scales, Q·Kᵀ ADC windows and A·V full scale are
frozen (:class:`~topkima.behavioral.ranges.AttentionRanges`, key policy and window quantiles
from the configuration) on the exact model's tensors for 256 training sentences, before the test
split is seen; ``ranges="per-call"`` is the earlier reading: K and V scales from each sentence's
own tensors, only the ADC windows frozen.

The sentences are cut into fixed shards of ``shard_sentences`` (in index order); each (run,
shard) is one task with its own comparator-noise generator (seeded by seed, k, mode, chip and
shard), run on local worker processes or a Dask cluster (the Monte Carlo study's executor,
:mod:`topkima.studies.montecarlo.execution`). A run's figures are its shards' results joined in
shard order, so they do not depend on the number of workers or where they ran. Every finished
shard and run is saved in ``--out`` (``runs/*.npz``, atomic); an interrupted evaluation resumes
from them. ``summary.json`` and the plots are written at the end.
"""
from __future__ import annotations

import functools
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
from topkima.studies import process_models

EVAL_MODES = ("quantized", "topk", "subtopk", "topkima")
K_SWEEP = (1, 2, 5, 10, 20)
SWEEP_MODES = ("topk", "topkima")
RANGE_CHOICES = ("frozen", "per-call")


@dataclass(frozen=True)
class AttentionEvalConfig:
    """What `topkima attention` evaluates. Every field is part of its resumable runs' identity."""

    k: int = 5                              #: keys kept per query row (of every attention mode)
    modes: tuple[str, ...] = EVAL_MODES     #: attention modes compared with exact (a subset of EVAL_MODES)
    limit: int | None = None                #: sentences used (70/30 train/test; None: all 10,072), ≥ 10
    seed: int = 0                           #: split, sentence subset, chip mismatch and comparator-noise seed
    sweep: bool = True                      #: also run the topk and topkima modes at k ∈ K_SWEEP
    batch_size: int = 32                    #: sentences per MiniLM forward within a shard
    chips: int = 1                          #: chips in topkima mode (chip seeds seed … seed + chips − 1)
    ranges: str = "frozen"                  #: "frozen" (AttentionRanges) or "per-call" (K, V scales per sentence)
    key_policy: str = "channel"             #: frozen key scales: "channel" or "sequence-head"
    # the window quantiles in use before frozen ranges (choose_adc_range's): lm-eval's 1.0 / 0.0 scales
    # MiniLM's queries by 0.11 and costs its chip 5 pp (docs/attention.md, "Frozen ranges")
    window_top_quantile: float = 0.75       #: ADC window top: this quantile of the rows' best scores
    window_bottom_quantile: float = 0.1     #: ADC window bottom: this quantile of their k-th best
    #: frozen ranges: the A·V ADC's full scale per head, "max" of the calibration outputs or a quantile
    #: in (0, 1) (topkima.behavioral.ranges)
    av_full_scale: str | float = "max"
    shard_sentences: int = 256              #: sentences per task (fixed: the noise streams follow the shards)

    def validated(self) -> "AttentionEvalConfig":
        """This configuration, or ValueError naming the field that is wrong."""
        from topkima.behavioral import KEY_SCALE_POLICIES
        for name in ("k", "batch_size", "chips", "shard_sentences"):
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
        if self.ranges not in RANGE_CHOICES:
            raise ValueError(f"ranges must be one of {', '.join(RANGE_CHOICES)}, got {self.ranges!r}")
        if self.key_policy not in KEY_SCALE_POLICIES:
            raise ValueError(f"key_policy must be one of {', '.join(KEY_SCALE_POLICIES)}, got {self.key_policy!r}")
        if not 0.0 <= self.window_bottom_quantile <= self.window_top_quantile <= 1.0:
            raise ValueError("need 0 ≤ window_bottom_quantile ≤ window_top_quantile ≤ 1")
        from topkima.behavioral.ranges import AV_FULL_SCALE_MAX, check_av_full_scale_policy
        check_av_full_scale_policy(self.av_full_scale)
        if self.av_full_scale != AV_FULL_SCALE_MAX and self.ranges != "frozen":
            raise ValueError("av_full_scale applies to frozen ranges (--ranges frozen); per-call ranges take the "
                             "A·V full scale from each call")
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


def _hook(mode: str, top_k: int, hardware, rng, stats: _LayerStats, frozen: dict):
    """The MiniLM attention callable for one mode: topkima_attention plus statistics. ``frozen``:
    {"ranges": {layer: AttentionRanges}} or {"windows": {layer: per-head (AdcRange, scale)}}
    (the latter used in topkima mode only, as before frozen ranges existed)."""
    from topkima.behavioral import dense_softmax_attention, topkima_attention
    ranges, windows = frozen.get("ranges"), frozen.get("windows")

    def attention(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]   # padded rows are not queries either
        kwargs = ({"ranges": ranges[layer]} if ranges is not None else
                  {"adc_range": windows[layer] if mode == "topkima" else None})
        out, st = topkima_attention(q, k, v, top_k=top_k, mask=m, mode=mode, macro=hardware, rng=rng,
                                    return_stats=True, **kwargs)
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


def _frozen_from_json(stored: dict) -> dict:
    """The frozen ranges or windows of :func:`_freeze` back as objects."""
    from topkima.behavioral import AdcRange, AttentionRanges
    if "ranges" in stored:
        return {"ranges": {int(layer): AttentionRanges.from_json(r) for layer, r in stored["ranges"].items()}}
    return {"windows": {int(layer): [(AdcRange(*w[:3]), float(w[3])) for w in heads]
                        for layer, heads in stored["windows"].items()}}


@functools.lru_cache(maxsize=2)
def _artefact_macro(artefact: str | None):
    """The macro of a calibration artefact (None: the committed one), once per process."""
    from topkima.behavioral import TopkimaMacro
    from topkima.calibration import load_calibration
    return TopkimaMacro(load_calibration(artefact))


def _freeze(model, texts: list[str], ks, config: AttentionEvalConfig, macro_variant: dict | None = None,
            artefact: str | None = None) -> dict:
    """{k: JSON-able frozen ranges (or windows)} from the exact model's tensors for ``texts``
    (training sentences), one batch padded to the longest; ADC windows within the ramp limits of
    ``macro_variant``'s chip (:mod:`topkima.studies.circuit_whatif`; None: the artefact's)."""
    if config.ranges == "per-call":
        windows = calibrate_windows(model, texts, ks, config.batch_size, config.window_top_quantile,
                                    config.window_bottom_quantile)
        return {str(kk): {"windows": {str(layer): [[w.n_cal, w.t_cal_units, w.t_ramp_units, float(sc)]
                                                    for w, sc in heads] for layer, heads in per_layer.items()}}
                for kk, per_layer in windows.items()}
    from topkima.behavioral import AttentionRanges
    from topkima.behavioral.minilm import dense_attention
    from topkima.studies.circuit_whatif import variant_ramp_limits
    if artefact:     # the windows a chip of that artefact can take
        from topkima.behavioral.macro.ramp_limits import RampLimits
        from topkima.behavioral.params import params_from_calibration
        limits = RampLimits.of_params(params_from_calibration(_artefact_macro(artefact).calibration))
    else:
        limits = variant_ramp_limits(macro_variant)
    fitted: dict = {kk: {} for kk in ks}

    def capture(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]
        for kk in ks:
            fitted[kk][layer] = AttentionRanges.fit(
                q, k, v, top_k=kk, mask=m, policy=config.key_policy,
                window_top_quantile=config.window_top_quantile, window_bottom_quantile=config.window_bottom_quantile,
                ramp_limits=limits, av_full_scale=config.av_full_scale)
        return dense_attention(q, k, v, mask, layer)
    model.embed(texts, attention=capture, batch_size=len(texts))
    return {str(kk): {"ranges": {str(layer): r.to_json() for layer, r in per_layer.items()}}
            for kk, per_layer in fitted.items()}


def shard_task(mode: str | None, kk: int, chip_seed: int | None, noise_seed: list, texts: list[str],
               batch_size: int, frozen: dict | None, macro_variant: dict | None = None,
               artefact: str | None = None) -> dict:
    """One shard of a run: ``texts`` embedded exactly (``mode`` None) or through ``mode`` (chip
    ``chip_seed`` of ``artefact``'s macro in topkima mode, None: the committed one; comparator
    noise from ``noise_seed``) under ``frozen`` ranges; the embeddings and the per-layer sums of
    :class:`_LayerStats`."""
    from topkima.behavioral import TopkimaHardware
    model = process_models.minilm()
    if mode is None:
        return {"emb": model.embed(texts, batch_size=batch_size)}
    stats = _LayerStats(model.n_layers)
    hardware = None
    if mode == "topkima":
        from topkima.studies.circuit_whatif import variant_macro
        macro = variant_macro(**macro_variant) if macro_variant else _artefact_macro(artefact)
        hardware = TopkimaHardware(macro, chip_seed=chip_seed)
    rng = np.random.default_rng(noise_seed)
    emb = model.embed(texts, attention=_hook(mode, kk, hardware, rng, stats, _frozen_from_json(frozen)),
                      batch_size=batch_size)
    out = {"emb": emb, "err_num": stats.err_num, "err_den": stats.err_den, "rows": stats.rows,
           "short": stats.short, "alpha_sum": stats.alpha_sum, "energy_j": stats.energy_j}
    if stats.alphas:
        out["alpha"] = np.concatenate(stats.alphas)
    return out


def _joined(shards: list[dict], n_layers: int) -> dict:
    """A run's arrays from its shards' (in shard order)."""
    arrays = {"emb": np.concatenate([r["emb"] for r in shards])}
    if "err_num" in shards[0]:
        stats = _LayerStats(n_layers)
        for r in shards:
            for name in ("err_num", "err_den", "rows", "short", "alpha_sum", "energy_j"):
                getattr(stats, name).__iadd__(r[name])
            if "alpha" in r:
                stats.alphas.append(r["alpha"])
        arrays["layer_json"] = np.array(json.dumps(stats.as_dict()))
        if stats.alphas:
            arrays["alpha"] = np.concatenate(stats.alphas)
    return arrays


def run_evaluation(out_dir: str | Path, config: AttentionEvalConfig = AttentionEvalConfig(), *, workers: int = 1,
                   scheduler: str | None = None, scheduler_timeout_s: float = 5.0, macro_variant: dict | None = None,
                   artefact: str | Path | None = None, log=print) -> dict:
    """The whole probe evaluation; returns (and writes) the summary. See the module docstring.

    ``workers``: local worker processes (0: this process); ``scheduler``: a Dask scheduler's
    address (then ``workers`` is ignored). The figures do not depend on either. ``macro_variant``:
    a what-if chip for topkima mode (:func:`topkima.studies.circuit_whatif.variant_knobs`);
    ``artefact``: the calibration artefact of topkima mode's chips (None: the committed one; e.g.
    another design's, such as calibration/sky130_calibration.json).
    """
    from topkima.studies.montecarlo.execution import connect
    config = config.validated()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be an integer ≥ 0, got {workers!r}")
    if macro_variant and config.ranges != "frozen":
        raise ValueError("a chip variant needs frozen ranges (--ranges frozen): its ADC windows are fitted for it")
    if macro_variant and artefact is not None:
        raise ValueError("a chip variant is a what-if of the committed artefact: give --chip-variant or --artefact, "
                         "not both")
    if artefact is not None:
        from topkima.calibration import load_calibration
        load_calibration(artefact)      # a missing or invalid artefact stops here, with its own message
        artefact = str(Path(artefact).resolve())
    client = connect(scheduler, scheduler_timeout_s) if scheduler else None   # fail fast, before the model loads
    try:
        return _evaluate(Path(out_dir), config, workers, client, scheduler, log, macro_variant, artefact)
    finally:
        if client is not None:
            client.close()


def _evaluate(out: Path, config: AttentionEvalConfig, workers: int, client, scheduler, log, macro_variant=None,
              artefact: str | None = None) -> dict:
    import hashlib

    from topkima.calibration.artefact import default_artefact_path
    from topkima.circuits.jobs import Progress
    from topkima.studies.montecarlo.execution import run_tasks
    k, modes, limit, seed = config.k, config.modes, config.limit, config.seed
    sweep, batch_size = config.sweep, config.batch_size
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = process_models.minilm()
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

    # finished runs are kept per configuration: another split, limit, seed, range policy or artefact
    # starts afresh
    # (the exact embeddings do not depend on the ranges: kept apart, shared by every range policy)
    exact_identity = {"seed": seed, "limit": limit, "batch_size": batch_size, "code": code_version(),
                      "train": hashlib.sha256(train.tobytes()).hexdigest(),
                      "test": hashlib.sha256(test.tobytes()).hexdigest(), "shard_sentences": config.shard_sentences}
    identity = {**exact_identity, "window_sentences": N_WINDOW_SENTENCES, "ranges": config.ranges,
                "key_policy": config.key_policy, "window": [config.window_top_quantile, config.window_bottom_quantile],
                "artefact": hashlib.sha256(Path(artefact or default_artefact_path()).read_bytes()).hexdigest()}
    if macro_variant:
        identity["macro_variant"] = macro_variant
    if config.av_full_scale != "max":      # absent for the default: earlier runs keep their identity
        identity["av_full_scale"] = config.av_full_scale
    runs_dir, exact_dir = (out / "runs" / hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
                           for ident in (identity, exact_identity))
    for folder, ident in ((runs_dir, identity), (exact_dir, exact_identity)):
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "config.json", ident, indent=1)
    dir_of = lambda name: exact_dir if name.startswith("exact_") else runs_dir  # noqa: E731

    # the runs: (name, mode or None for exact, k, chip index); topkima chip 0 keeps the old name
    chip_name = lambda mode, kk, c: f"{mode}_k{kk}" + (f"_chip{c}" if c else "")  # noqa: E731
    planned = [("exact_train", None, k, 0), ("exact_test", None, k, 0)]
    for mode in modes:
        for c in range(config.chips if mode == "topkima" else 1):
            planned.append((chip_name(mode, k, c), mode, k, c))
    if sweep:
        planned += [(f"{mode}_k{kk}", mode, kk, 0) for mode in SWEEP_MODES for kk in K_SWEEP
                    if (f"{mode}_k{kk}", mode, kk, 0) not in planned]
    window_texts = [texts[i] for i in train[np.random.default_rng([seed, 2]).permutation(len(train))[
        :N_WINDOW_SENTENCES]]]
    frozen_path = runs_dir / "frozen_ranges.json"
    frozen = None

    def frozen_for(kk: int) -> dict:
        nonlocal frozen
        if frozen is None:
            if frozen_path.exists():
                frozen = json.loads(frozen_path.read_text())
            else:
                frozen = _freeze(model, window_texts, sorted(set(K_SWEEP) | {k}), config, macro_variant, artefact)
                write_json_atomic(frozen_path, frozen)
        return frozen[str(kk)]

    size = config.shard_sentences
    runs: dict[str, dict] = {}
    shards: dict[str, dict[int, dict]] = {}
    tasks = []
    for name, mode, kk, c in planned:
        path = dir_of(name) / f"{name}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as f:
                runs[name] = {key: f[key] for key in f.files}
            continue
        rows = train if name == "exact_train" else test
        shards[name] = {}
        for i, start in enumerate(range(0, len(rows), size)):
            shard_path = dir_of(name) / f"{name}_s{i:04d}.npz"
            if shard_path.exists():
                with np.load(shard_path, allow_pickle=False) as f:
                    shards[name][i] = {key: f[key] for key in f.files}
                continue
            chunk = [texts[j] for j in rows[start:start + size]]
            noise = [seed, kk, EVAL_MODES.index(mode) if mode else 9, c, i]
            tasks.append((f"{name}_s{i:04d}", shard_task,
                          (mode, kk, seed + c, noise, chunk, batch_size, None if mode is None else frozen_for(kk),
                           macro_variant, artefact)))

    def store(key: str, result: dict) -> None:
        name, index = key.rsplit("_s", 1)
        save_npz_atomic(dir_of(name) / f"{key}.npz", **result)
        shards[name][int(index)] = result

    where = f"Dask scheduler {scheduler}" if client is not None else (
        f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "this process")
    if tasks:
        log(f"{len(tasks)} shards of up to {size} sentences to do on {where}")
    run_tasks(tasks, store, workers=workers, client=client,
              progress=Progress(len(tasks), log, prefix="attention: ", what="shards", every_s=30.0))
    for name, *_ in planned:
        if name not in runs:
            runs[name] = _joined([shards[name][i] for i in sorted(shards[name])], model.n_layers)
            save_npz_atomic(dir_of(name) / f"{name}.npz", **runs[name])

    exact_train, exact_test = runs["exact_train"], runs["exact_test"]
    probe = probes.LogisticProbe.fit(exact_train["emb"], y[train])
    pred_exact = probe.predict(exact_test["emb"])
    y_test = y[test]
    correct_exact = pred_exact == y_test
    lengths = model.tokenize([texts[i] for i in test]).lengths

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
        results[mode] = report(runs[f"{mode}_k{k}"], k)
        r = results[mode]
        log(f"  {mode:9s} k={k}: accuracy {100 * r['accuracy']:.2f} %, flips {100 * r['flip_rate']:.2f} %, "
            f"McNemar p {r['mcnemar_p']:.3g}, cosine {r['embedding_cosine']:.4f}"
            + (f", alpha {r['alpha_mean']:.3f}" if r["alpha_mean"] is not None else ""))
    chips = []
    if "topkima" in modes:
        for c in range(config.chips):
            r = report(runs[chip_name("topkima", k, c)], k)
            chips.append({"chip_seed": seed + c, **{key: r[key] for key in ("accuracy", "flip_rate", "mcnemar_p",
                                                                           "embedding_cosine", "alpha_mean")}})
            if c:
                log(f"  topkima chip seed {seed + c}: accuracy {100 * r['accuracy']:.2f} %, "
                    f"flips {100 * r['flip_rate']:.2f} %, alpha {r['alpha_mean']:.3f}")
    sweep_results: dict[str, list] = {}
    if sweep:
        for mode in SWEEP_MODES:
            sweep_results[mode] = []
            for kk in K_SWEEP:
                entry = report(runs[f"{mode}_k{kk}"], kk)
                sweep_results[mode].append(entry)
                log(f"  sweep {mode:8s} k={kk:2d}: accuracy {100 * entry['accuracy']:.2f} %, "
                    f"flips {100 * entry['flip_rate']:.2f} %")
    n = len(test)
    acc_exact = probes.accuracy(pred_exact, y_test)
    summary = {
        "task": "VADER movie-review snippets (Hutto & Gilbert 2014), sign(rating) for |rating| >= 0.5, "
                "logistic probe on exact all-MiniLM-L6-v2 embeddings",
        "seed": seed, "k": k, "n_train": int(len(train)), "n_test": int(n), "macro_variant": macro_variant,
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
        "ranges": {"policy": config.ranges, "key_policy": config.key_policy,
                   "window_quantiles": [config.window_top_quantile, config.window_bottom_quantile],
                   "av_full_scale": config.av_full_scale},
        "topkima_chips": chips,
        "topkima_chips_median_accuracy": float(np.median([c["accuracy"] for c in chips])) if chips else None,
        "execution": {"where": where, "shards_run": len(tasks), "shard_sentences": size},
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
