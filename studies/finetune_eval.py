"""The fine-tuned models through the same attention path as `topkima attention`, every mode.

Each trained model (:mod:`topkima.studies.finetune`) embeds the held-out test split through
``topkima_attention`` in modes exact, quantized, topk, subtopk and topkima (``n_chips`` chips,
chip seeds 0…n−1, the same chips for every training), at the paper's k (and any sweep asked for, such as
:data:`topkima.studies.finetune.K_SWEEP`), and its own trained
head classifies the embeddings. The chip's ADC windows are frozen per model, layer, head and k
from that model's scores on 256 training sentences (``calibrate_windows`` of the attention
evaluation), before it sees the test split. Every finished (training, mode, k, chip) run is kept
in ``<out>/eval/`` (atomic npz), so an interrupted evaluation resumes.

``summary.json``: ``accuracy[training][mode]`` with modes ``exact``, ``quantized``, ``topk5``,
``subtopk5``, ``topkima5`` (median over the chips) and so on for every k; ``topkima_chips`` (each
chip's accuracy); ``alpha_per_layer[training][k]`` (α, the early-stop fraction of the ramp, per
layer, mean over rows and chips); ``loss_pp`` (the dense model's exact accuracy minus the TFCBP
model's quantized, topk5 and topkima5 accuracies, in percentage points) beside the paper's figures.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from topkima.studies.finetune import EVAL_MODES, head_logits

#: the paper's figures (SPEC §2, §6): TFCBP top-5 loss, quantisation loss, α
PAPER = {"tfcbp_topk5_loss_pp_at_most": 1.2, "quantization_loss_pp": 0.2, "alpha": 0.31}


@dataclass(frozen=True)
class EvalConfig:
    """What the evaluation runs."""

    modes: tuple[str, ...] = EVAL_MODES     #: attention modes, of :data:`EVAL_MODES`
    #: more keys-per-row settings for ``sweep_trainings`` beyond ``headline_k`` (e.g. :data:`topkima.studies.finetune.K_SWEEP`)
    #: [ours: none by default: the paper's figures are at k = 5 (SPEC §3), and a full run with the
    #: sweep of both models needs ≈ 36 CPU-min more (40 runs), next to the full run's 31]
    ks: tuple[int, ...] = ()
    n_chips: int = 3                        #: chips (chip seeds 0…n−1) in topkima mode
    test_limit: int | None = None           #: a seeded subset of the test split
    batch_size: int = 32
    #: trainings evaluated at every k of ``ks`` too; the others (``hwaware``) at ``headline_k`` only
    #: [ours: option (c) is compared with (b) on the chip at the paper's k]
    sweep_trainings: tuple[str, ...] = ("dense", "tfcbp")
    headline_k: int = 5                     #: the paper's k (SPEC §3)
    workers: int = 2                        #: evaluation processes (0: this process)

    def validate(self) -> "EvalConfig":
        for mode in self.modes:
            if mode not in EVAL_MODES:
                raise ValueError(f"unknown attention mode {mode!r}; choose from {', '.join(EVAL_MODES)}")
        for k in (*self.ks, self.headline_k):
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"k must be an integer ≥ 1, got {k!r}")
        if self.n_chips < 1:
            raise ValueError(f"n_chips must be at least 1, got {self.n_chips}")
        if self.test_limit is not None and self.test_limit < 2:
            raise ValueError(f"test_limit must be at least 2, got {self.test_limit}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an integer ≥ 0, got {self.workers!r}")
        return self

    def ks_for(self, training: str) -> tuple[int, ...]:
        """The ks ``training`` is evaluated at."""
        if training not in self.sweep_trainings:
            return (self.headline_k,)
        return tuple(sorted({*self.ks, self.headline_k}))


def _runs(config: EvalConfig, ks) -> list[tuple[str, int | None, int | None]]:
    """(mode, k, chip) of every run (k- and chip-free modes once): the headline figures first
    (exact, quantized and every mode at ``headline_k``), then the rest of the k sweep; within
    each, the chip runs first (the longest, for the worker pool)."""
    runs = []
    for mode in sorted(config.modes, key=lambda m: m != "topkima"):
        if mode in ("exact", "quantized"):
            runs.append((mode, None, None))
        elif mode == "topkima":
            runs += [(mode, k, c) for k in ks for c in range(config.n_chips)]
        else:
            runs += [(mode, k, None) for k in ks]
    return sorted(runs, key=lambda run: run[1] not in (None, config.headline_k))   # stable


def _run_name(mode: str, k, chip) -> str:
    return mode + ("" if k is None else f"{k}") + ("" if chip is None else f"_chip{chip}")


#: a worker's loaded model and its frozen ADC windows, kept between its tasks (one model at a time)
_WORKER_MODEL: dict = {}


def _model_and_windows(model_dir: str, ks: tuple, window_texts: tuple, batch_size: int, windows: bool):
    from topkima.behavioral.minilm import MiniLM
    from topkima.studies.adc_windows import calibrate_windows
    key = (model_dir, ks)
    if key not in _WORKER_MODEL:
        _WORKER_MODEL.clear()
        _WORKER_MODEL[key] = [MiniLM.load(model_dir), None]
    entry = _WORKER_MODEL[key]
    if windows and entry[1] is None:
        entry[1] = calibrate_windows(entry[0], list(window_texts), sorted(ks), batch_size)
    return entry


def eval_run(model_dir: str, mode: str, k, chip, texts: tuple, window_texts: tuple, ks: tuple, seed: int,
             batch_size: int, path: str) -> dict:
    """One (mode, k, chip) run of one model: the test sentences' embeddings and α per layer,
    written atomically to ``path``; returns the CPU time it took (s). A task of the worker pool."""
    from topkima.behavioral import TopkimaHardware, topkima_attention
    from topkima.studies.outputs import save_npz_atomic
    cpu0 = time.process_time()
    model, windows = _model_and_windows(model_dir, ks, window_texts, batch_size, mode == "topkima")
    alpha_sum, alpha_rows = np.zeros(model.n_layers), np.zeros(model.n_layers)
    attention = None
    if mode != "exact":
        hardware = TopkimaHardware(chip_seed=chip) if mode == "topkima" else None
        rng = np.random.default_rng([seed, k or 0, EVAL_MODES.index(mode), chip or 0])

        def attention(q, kk, v, mask, layer):
            out, st = topkima_attention(q, kk, v, top_k=k or 1, mask=mask[:, None, :, None] & mask[:, None, None, :],
                                        mode=mode, macro=hardware, rng=rng, return_stats=True,
                                        adc_range=windows[k][layer] if mode == "topkima" else None)
            if st.alpha is not None:
                a = st.alpha[np.broadcast_to(mask[:, None, :], st.alpha.shape)]
                alpha_sum[layer] += float(a.sum())
                alpha_rows[layer] += a.size
            return out

    emb = model.embed(list(texts), attention=attention, batch_size=batch_size)
    alpha = alpha_sum / alpha_rows if mode == "topkima" else np.full(model.n_layers, np.nan)
    save_npz_atomic(Path(path), emb=emb, alpha_per_layer=alpha)
    return {"cpu_s": time.process_time() - cpu0}


def evaluate(model_dirs: dict[str, Path], reviews, train_idx, test_idx, config: EvalConfig, out_dir: Path,
             seed: int = 0, log=print) -> dict:
    """Accuracy per training and mode, α per layer; see the module docstring. The runs go to
    ``config.workers`` processes (:func:`topkima.circuits.jobs.run_pool`); finished runs are
    kept and not run again."""
    from topkima.circuits.jobs import run_pool
    from topkima.studies.adc_windows import N_WINDOW_SENTENCES
    from topkima.studies.montecarlo.execution import WORKER_ENV
    config.validate()
    test = np.asarray(test_idx)
    if config.test_limit is not None and config.test_limit < len(test):
        test = np.sort(np.random.default_rng([seed, 5]).choice(test, config.test_limit, replace=False))
    texts = tuple(reviews.texts[i] for i in test)
    y = np.asarray(reviews.labels)[test]
    window_texts = tuple(reviews.texts[i] for i in np.asarray(train_idx)[
        np.random.default_rng([seed, 2]).permutation(len(train_idx))[:N_WINDOW_SENTENCES]])
    t0 = time.time()
    paths, tasks = {}, []
    for training, model_dir in model_dirs.items():
        run_dir = out_dir / "eval" / training / _model_key(model_dir, test)
        run_dir.mkdir(parents=True, exist_ok=True)
        ks = config.ks_for(training)
        for mode, k, chip in _runs(config, ks):
            name = _run_name(mode, k, chip)
            path = run_dir / f"{name}.npz"
            paths[training, mode, k, chip] = path
            if not path.exists():
                tasks.append((f"{training} {name}", eval_run, (str(model_dir), mode, k, chip, texts, window_texts,
                                                                tuple(sorted(ks)), seed, config.batch_size, str(path))))
    cpu = {"eval_cpu_s": 0.0}

    def on_result(label, result, wall_s):
        cpu["eval_cpu_s"] += result["cpu_s"]
        log(f"  {label}: {wall_s:.1f} s ({result['cpu_s']:.1f} s CPU)")

    # every model's headline runs before any model's k sweep: the figures the paper reports first
    tasks.sort(key=lambda task: task[2][2] not in (None, config.headline_k))   # stable
    log(f"evaluation: {len(tasks)} runs to do of {len(paths)}, {config.workers} workers, {len(test)} test sentences")
    run_pool(tasks, on_result, workers=config.workers, worker_env=WORKER_ENV)
    accuracy, chip_acc, alpha_layers = {}, {}, {}
    for training, model_dir in model_dirs.items():
        from topkima.behavioral.minilm import MiniLM
        extra = MiniLM.load(model_dir).extra
        w = np.asarray(extra["classifier.weight"], np.float64)[0]
        b = float(np.asarray(extra["classifier.bias"])[0])
        acc, per_chip, alphas = {}, {}, {}
        for (t, mode, k, chip), path in paths.items():
            if t != training:
                continue
            with np.load(path, allow_pickle=False) as f:
                emb, alpha = f["emb"], f["alpha_per_layer"]
            correct = float(np.mean((head_logits(emb.astype(np.float64), w, b) > 0) == (y == 1)))
            if mode == "topkima":
                per_chip.setdefault(str(k), []).append(correct)
                alphas.setdefault(str(k), []).append(alpha.tolist())
            else:
                acc[_run_name(mode, k, chip)] = correct
        for k, values in per_chip.items():
            acc[f"topkima{k}"] = float(np.median(values))
        accuracy[training], chip_acc[training] = acc, per_chip
        alpha_layers[training] = {k: np.mean(np.array(v), axis=0).tolist() for k, v in alphas.items()}
        log(f"{training}: " + ", ".join(f"{m} {100 * a:.2f} %" for m, a in acc.items()))
    summary = {"task": "VADER movie-review snippets (Hutto & Gilbert 2014), sign(rating) for |rating| >= 0.5; "
                       "all-MiniLM-L6-v2 + logistic head fine-tuned end to end on the training split",
               "n_test": int(len(test)), "eval": asdict(config), "accuracy": accuracy, "topkima_chips": chip_acc,
               "alpha_per_layer": alpha_layers,
               "alpha_mean": {t: {k: float(np.mean(v)) for k, v in a.items()} for t, a in alpha_layers.items()},
               "accuracy_se_exact": {t: float(np.sqrt(a["exact"] * (1 - a["exact"]) / len(test)))
                                     for t, a in accuracy.items() if "exact" in a},
               "eval_wall_time_s": round(time.time() - t0, 1), "eval_cpu_time_s": round(cpu["eval_cpu_s"], 1),
               "paper": PAPER}
    summary["loss_pp"] = loss_pp(accuracy)
    if "hwaware" in accuracy and "tfcbp" in accuracy:
        summary["hwaware_minus_tfcbp_pp"] = {
            m: round(100 * (accuracy["hwaware"][m] - accuracy["tfcbp"][m]), 3)
            for m in accuracy["hwaware"] if m in accuracy["tfcbp"]}
    return summary


def loss_pp(accuracy: dict) -> dict:
    """The dense fine-tuned model's exact accuracy minus the TFCBP model's quantized, topk5 and
    topkima5 (median chip) accuracies, in percentage points (those present)."""
    dense = accuracy.get("dense", {}).get("exact")
    tfcbp = accuracy.get("tfcbp", {})
    if dense is None:
        return {}
    return {f"tfcbp_{name}": round(100 * (dense - tfcbp[mode]), 3)
            for name, mode in (("quantized", "quantized"), ("topk5", "topk5"), ("topkima", "topkima5"))
            if mode in tfcbp}


def _model_key(model_dir: Path, test: np.ndarray) -> str:
    """Runs are kept per model weights, test subset and code."""
    import hashlib
    from topkima.studies.code_version import code_version as _code_version
    h = hashlib.sha256((Path(model_dir) / "model.safetensors.sha256").read_bytes())
    h.update(test.tobytes())
    h.update(_code_version().encode())
    return h.hexdigest()[:16]


def write_summary(path: Path, summary: dict) -> None:
    """summary.json, atomically."""
    from topkima.circuits.files import write_text_atomic
    write_text_atomic(path, json.dumps(summary, indent=1))
