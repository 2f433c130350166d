"""The fine-tuned models through the same attention path as `topkima attention`, every mode.

Each trained model (:mod:`topkima.studies.finetune`) embeds the held-out test split through
``topkima_attention`` in modes exact, quantized, topk, subtopk and topkima (``n_chips`` chips,
chip seeds 0…n−1, the same chips for every training), k ∈ :data:`K_SWEEP`, and its own trained
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

from topkima.studies.finetune import EVAL_MODES, K_SWEEP, head_logits

#: the paper's figures (SPEC §2, §6): TFCBP top-5 loss, quantisation loss, α
PAPER = {"tfcbp_topk5_loss_pp_at_most": 1.2, "quantization_loss_pp": 0.2, "alpha": 0.31}


@dataclass(frozen=True)
class EvalConfig:
    """What the evaluation runs."""

    modes: tuple[str, ...] = EVAL_MODES     #: attention modes, of :data:`EVAL_MODES`
    ks: tuple[int, ...] = K_SWEEP           #: keys kept per row
    n_chips: int = 3                        #: chips (chip seeds 0…n−1) in topkima mode
    test_limit: int | None = None           #: a seeded subset of the test split
    batch_size: int = 32

    def validate(self) -> "EvalConfig":
        for mode in self.modes:
            if mode not in EVAL_MODES:
                raise ValueError(f"unknown attention mode {mode!r}; choose from {', '.join(EVAL_MODES)}")
        for k in self.ks:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"k must be an integer ≥ 1, got {k!r}")
        if self.n_chips < 1:
            raise ValueError(f"n_chips must be at least 1, got {self.n_chips}")
        if self.test_limit is not None and self.test_limit < 2:
            raise ValueError(f"test_limit must be at least 2, got {self.test_limit}")
        return self


def _runs(config: EvalConfig):
    """(mode, k, chip) of every run: k- and chip-free modes once."""
    for mode in config.modes:
        if mode in ("exact", "quantized"):
            yield mode, None, None
        elif mode == "topkima":
            yield from ((mode, k, c) for k in config.ks for c in range(config.n_chips))
        else:
            yield from ((mode, k, None) for k in config.ks)


def evaluate(model_dirs: dict[str, Path], reviews, train_idx, test_idx, config: EvalConfig, out_dir: Path,
             seed: int = 0, log=print) -> dict:
    """Accuracy per training and mode, α per layer; see the module docstring."""
    from topkima.studies.adc_windows import N_WINDOW_SENTENCES, calibrate_windows
    from topkima.studies.attention_eval import _hook, _LayerStats
    from topkima.behavioral import TopkimaHardware
    from topkima.behavioral.minilm import MiniLM
    from topkima.studies.outputs import save_npz_atomic
    config.validate()
    test = np.asarray(test_idx)
    if config.test_limit is not None and config.test_limit < len(test):
        test = np.sort(np.random.default_rng([seed, 5]).choice(test, config.test_limit, replace=False))
    texts = [reviews.texts[i] for i in test]
    y = np.asarray(reviews.labels)[test]
    window_texts = [reviews.texts[i] for i in np.asarray(train_idx)[
        np.random.default_rng([seed, 2]).permutation(len(train_idx))[:N_WINDOW_SENTENCES]]]
    chips = [TopkimaHardware(chip_seed=c) for c in range(config.n_chips)]
    accuracy, chip_acc, alpha_layers, timing = {}, {}, {}, {}
    for training, model_dir in model_dirs.items():
        t0 = time.time()
        model = MiniLM.load(model_dir)
        w = np.asarray(model.extra["classifier.weight"], np.float64)[0]
        b = float(np.asarray(model.extra["classifier.bias"])[0])
        run_dir = out_dir / "eval" / training / _model_key(model_dir, test)
        run_dir.mkdir(parents=True, exist_ok=True)
        windows: dict = {}
        acc, per_chip, alphas = {}, {}, {}
        for mode, k, chip in _runs(config):
            name = mode + ("" if k is None else f"{k}") + ("" if chip is None else f"_chip{chip}")
            path = run_dir / f"{name}.npz"
            if not path.exists():
                stats = _LayerStats(model.n_layers)
                attention = None
                if mode != "exact":
                    if mode == "topkima" and not windows:
                        windows.update(calibrate_windows(model, window_texts, sorted(config.ks), config.batch_size))
                    rng = np.random.default_rng([seed, k or 0, EVAL_MODES.index(mode), chip or 0])
                    attention = _hook(mode, k or 1, chips[chip or 0], rng, stats,
                                      windows[k] if mode == "topkima" else None)
                t = time.time()
                emb = model.embed(texts, attention=attention, batch_size=config.batch_size)
                layer = stats.as_dict()
                save_npz_atomic(path, emb=emb, alpha_per_layer=np.array(
                    layer["alpha_mean"] if layer["alpha_mean"] is not None else [np.nan] * model.n_layers))
                log(f"  {training} {name}: {time.time() - t:.1f} s")
            with np.load(path, allow_pickle=False) as f:
                emb, alpha = f["emb"], f["alpha_per_layer"]
            correct = float(np.mean((head_logits(emb.astype(np.float64), w, b) > 0) == (y == 1)))
            if mode == "topkima":
                per_chip.setdefault(str(k), []).append(correct)
                alphas.setdefault(str(k), []).append(alpha.tolist())
            else:
                acc[name] = correct
        for k, values in per_chip.items():
            acc[f"topkima{k}"] = float(np.median(values))
        accuracy[training], chip_acc[training] = acc, per_chip
        alpha_layers[training] = {k: np.mean(np.array(v), axis=0).tolist() for k, v in alphas.items()}
        timing[training] = round(time.time() - t0, 1)
        log(f"{training}: " + ", ".join(f"{m} {100 * a:.2f} %" for m, a in acc.items()))
    summary = {"task": "VADER movie-review snippets (Hutto & Gilbert 2014), sign(rating) for |rating| >= 0.5; "
                       "all-MiniLM-L6-v2 + logistic head fine-tuned end to end on the training split",
               "n_test": int(len(test)), "eval": asdict(config), "accuracy": accuracy, "topkima_chips": chip_acc,
               "alpha_per_layer": alpha_layers,
               "alpha_mean": {t: {k: float(np.mean(v)) for k, v in a.items()} for t, a in alpha_layers.items()},
               "accuracy_se_exact": {t: float(np.sqrt(a["exact"] * (1 - a["exact"]) / len(test)))
                                     for t, a in accuracy.items() if "exact" in a},
               "eval_wall_time_s": timing, "paper": PAPER}
    summary["loss_pp"] = loss_pp(accuracy)
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
