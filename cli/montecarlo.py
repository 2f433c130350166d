"""`topkima montecarlo`: Monte Carlo variation studies of the calibrated Topkima macro.

N chip instances are drawn from the calibration artefact's random spreads (read-port and
replica-cell Pelgrom σ, comparator device σ's and the residual of its offset model, comparator
noise), each spread multiplied by a σ multiplier s (``TopkimaMacro(sigma_scale=s)``), and each
instance converts one fixed workload. Per s the study reports, against the ideal macro
(``TopkimaMacro.ideal()``: no mismatch, no noise, linear) on the same inputs:

* **code error** per ideal code (mean, σ) of the full-ramp conversion of every key;
* **top-k recall and precision** of the selected key sets (and recall against the nominal chip
  and against the exact digital top-k of the integer scores);
* the **early-stop fraction α** (``TopkResult.alpha``) and the ramp ADC's **INL/DNL** spread
  (``ChipInstance.ramp_inl_dnl()``);
* all-MiniLM-L6-v2 **probe accuracy and flip rate** on a fixed subset of the VADER movie-review
  sentences with the chip in the attention (``topkima attention``'s task, per instance another
  chip), with confidence bands across instances;
* **SPICE vs behavioural Monte Carlo**: the artefact's SPICE Monte Carlo comparator offsets
  against the offsets the model draws, and the golden SPICE column codes against the codes of
  independently drawn model instances on the same inputs, with two-sample tests.

Randomness [ours]. Everything comes from one root ``SeedSequence(seed)`` by explicit spawn keys
(what ``SeedSequence.spawn`` would produce, computed without the sequence's spawn counter):
``(0,)`` the workload, ``(1, i, 0)`` / ``(1, i, 1)`` instance i's device draws / comparator
noise, ``(2, i, …)`` accuracy instance i, ``(3, …)`` the SPICE comparison, ``(4,)`` the sentence
subset. Instance i uses the same generators at every σ multiplier: numpy draws a normal of scale
s as s times the same standard normal, so instance i at s is the same chip with its deviations
scaled (*common random numbers*; the σ curves are smooth and their differences are paired).
The device draws are common at every s; the comparator-noise normals are common between
multipliers with the same noise window (the macro draws 2h normals per decision, h growing with
σ_n: h = 1 up to s = 1 with the committed artefact, 2 at 1.5 and 2), so there they are fresh.
An instance's result depends only on (configuration, s, i): any worker count or scheduler gives
identical figures, and results are aggregated by instance index, never in completion order.

Execution: local worker processes (``--workers``), or a Dask distributed cluster
(``--scheduler ADDRESS``). Each finished (s, instance) result is written atomically as its own
JSON file under ``OUT/instances/<configuration hash>/`` (the hash covers the artefact, the code
and the study's parameters), so an interrupted study resumes and redoes nothing finished.

Sources: Pelgrom, Duinmaijer, Welbers, "Matching properties of MOS transistors", IEEE JSSC
24(5), 1989 (the mismatch model behind the artefact's σ's); the two-sample Kolmogorov–Smirnov
test (Smirnov 1939; ``scipy.stats.ks_2samp``) and the k-sample Anderson–Darling test (Scholz &
Stephens, JASA 82(399), 1987; ``scipy.stats.anderson_ksamp``); the probe task of
``topkima.attention_eval`` (Hutto & Gilbert, ICWSM 2014; Pang & Lee, ACL 2005).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from topkima.calibration import write_atomic

#: spawn-key purposes under the root SeedSequence (see the module docstring)
PURPOSE_WORKLOAD, PURPOSE_INSTANCE, PURPOSE_ACCURACY, PURPOSE_SPICE, PURPOSE_SENTENCES = 0, 1, 2, 3, 4
#: σ multipliers of the default study
DEFAULT_SIGMA_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0)
#: bins (LSB) of the per-column max |INL| and max |DNL| histograms; larger values go in the last bin
INL_DNL_BINS_LSB = np.linspace(0.0, 2.0, 41)
#: thread variables kept at 1 in every worker (two cores; BLAS threads would oversubscribe)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: training sentences whose exact scores set each (layer, head)'s frozen ADC window (as topkima attention)
N_WINDOW_SENTENCES = 256


class StudyError(ValueError):
    """A study that cannot run as asked (bad parameters, unreachable scheduler, missing extra)."""


@dataclass(frozen=True)
class StudyConfig:
    """What a Monte Carlo study computes. Every field is part of the results' identity.

    The workload is synthetic [ours]: ``n_queries`` query rows of signed codes uniform in
    −q_max_code … q_max_code (sign + 5-bit PWM magnitude, SPEC §2) and ``n_keys`` key columns of
    ``d`` levels uniform in −7 … 7, both from the root seed. Its ADC window and query scale are
    chosen with ``choose_adc_range`` on the exact integer scores (as a chip is set up before it
    converts), and the scaled query codes are what every instance and the references convert.
    """

    instances: int = 100                    #: chip instances per σ multiplier
    sigma_scales: tuple[float, ...] = DEFAULT_SIGMA_SCALES  #: σ multipliers (1 = the characterised chip)
    k: int = 5                              #: keys kept per query row
    seed: int = 0                           #: root seed of every random draw
    n_queries: int = 1024                   #: query rows of the synthetic workload
    n_keys: int = 256                       #: keys (columns in use of one 256 × 256 array)
    d: int = 64                             #: key elements per column
    q_max_code: int = 31                    #: |q| ≤ this in the synthetic queries (before the window's scale)
    array: str = "256x256"                  #: macro array preset
    accuracy_instances: int = 2             #: chips per σ for the MiniLM probe (0: no accuracy study)
    accuracy_test_sentences: int = 200      #: VADER test sentences re-embedded per accuracy instance
    accuracy_train_sentences: int = 1000    #: VADER training sentences for the probe (exact embeddings)
    spice_instances: int = 16               #: model instances drawn for the SPICE comparison (0: skip it)

    @classmethod
    def quick(cls, **overrides) -> "StudyConfig":
        """The small configuration (`topkima report --quick`, tests): 16 instances at σ × {0, 1, 2},
        256 query rows, one accuracy chip per σ on 100 test sentences."""
        base = dict(instances=16, sigma_scales=(0.0, 1.0, 2.0), n_queries=256, accuracy_instances=1,
                    accuracy_test_sentences=100, accuracy_train_sentences=500, spice_instances=8)
        base.update(overrides)
        return cls(**base)

    def validated(self) -> "StudyConfig":
        """This configuration with σ multipliers as floats, or :class:`StudyError` naming the problem."""
        def whole(name, lo, hi=None):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
                bound = f"an integer ≥ {lo}" if hi is None else f"an integer in {lo}..{hi}"
                raise StudyError(f"{name} must be {bound}, got {v!r}")
        whole("instances", 1)
        whole("k", 1)
        whole("seed", 0)
        whole("n_queries", 1)
        whole("n_keys", 1, 256 if self.array == "256x256" else 128)
        whole("d", 1, 64)
        whole("q_max_code", 1, 31)
        whole("accuracy_instances", 0)
        whole("accuracy_test_sentences", 10)
        whole("accuracy_train_sentences", 20)
        whole("spice_instances", 0)
        if self.array not in ("256x256", "128x128"):
            raise StudyError(f"array must be '256x256' or '128x128', got {self.array!r}")
        if self.k > self.n_keys:
            raise StudyError(f"k = {self.k} exceeds the {self.n_keys} keys")
        try:
            scales = tuple(float(s) for s in self.sigma_scales)
        except (TypeError, ValueError):
            raise StudyError(f"sigma_scales must be numbers, got {self.sigma_scales!r}") from None
        if not scales:
            raise StudyError("sigma_scales must name at least one σ multiplier")
        for s in scales:
            if not math.isfinite(s) or s < 0:
                raise StudyError(f"σ multipliers must be finite numbers ≥ 0, got {s}")
        if len({sigma_label(s) for s in scales}) != len(scales):
            raise StudyError(f"σ multipliers must be distinct, got {scales}")
        return replace(self, sigma_scales=scales)


def sigma_label(sigma: float) -> str:
    """The key of a σ multiplier in ``summary.json`` ("1.0", "0.5")."""
    return repr(float(sigma))


# --- identity of results (resume cache) ----------------------------------------------------
def code_version() -> str:
    """SHA-256 of the code an instance's result depends on (behavioural model, this module, and
    the attention evaluation and data loading its accuracy runs use)."""
    from topkima import behavioral
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in (sorted(Path(behavioral.__file__).parent.glob("*.py"))
                 + [Path(__file__), here / "attention_eval.py", here / "sentiment.py"]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _artefact_sha256(cal) -> str:
    return hashlib.sha256(json.dumps(cal.data, sort_keys=True).encode()).hexdigest()


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def instance_identity(cfg: StudyConfig, artefact_sha256: str, code: str) -> dict:
    """What one (σ, instance) result depends on: not the instance count or the σ list, so that
    a larger study reuses a smaller one's finished instances."""
    keep = ("k", "seed", "n_queries", "n_keys", "d", "q_max_code", "array")
    return {"kind": "instance", **{f: getattr(cfg, f) for f in keep}, "artefact": artefact_sha256, "code": code}


def accuracy_identity(cfg: StudyConfig, artefact_sha256: str, code: str) -> dict:
    keep = ("k", "seed", "array", "accuracy_test_sentences", "accuracy_train_sentences")
    return {"kind": "accuracy", **{f: getattr(cfg, f) for f in keep}, "window_sentences": N_WINDOW_SENTENCES,
            "artefact": artefact_sha256, "code": code}


def _seq(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


# --- metrics (pure functions) ------------------------------------------------------------
def codes_from_firing(firing_cycle: np.ndarray, n_steps: int = 32) -> np.ndarray:
    """Full-ramp ADC codes from firing cycles (``mode="conventional"``'s rule: never fired = 0)."""
    return np.where(firing_cycle <= n_steps, n_steps - firing_cycle, 0)


def set_overlap(selected: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: |selected ∩ reference|, |selected|, |reference|, ignoring −1 (empty) slots."""
    a, b = np.asarray(selected), np.asarray(reference)
    va, vb = a >= 0, b >= 0
    hit = ((a[..., :, None] == b[..., None, :]) & va[..., :, None] & vb[..., None, :]).any(axis=-1)
    return hit.sum(axis=-1), va.sum(axis=-1), vb.sum(axis=-1)


def recall_precision(selected: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean over rows of |S ∩ R| / |R| (rows with an empty R left out) and of |S ∩ R| / |S|
    (rows with an empty S left out); 1.0 when no row counts."""
    hit, n_sel, n_ref = set_overlap(selected, reference)
    rec = hit[n_ref > 0] / n_ref[n_ref > 0]
    prec = hit[n_sel > 0] / n_sel[n_sel > 0]
    return (float(rec.mean()) if rec.size else 1.0), (float(prec.mean()) if prec.size else 1.0)


def exact_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Digital top-k of integer scores, ties to lower key index (rows, k)."""
    return np.sort(np.argsort(-scores, axis=-1, kind="stable")[..., :k], axis=-1)


def band(values) -> dict:
    """Across-instance statistics of one metric: mean, standard deviation, the 95 % confidence
    interval of the mean (Student t) and the 2.5–97.5 % spread of the instances themselves."""
    from scipy.stats import t as student_t
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    half = float(student_t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    lo, hi = np.percentile(x, [2.5, 97.5])
    return {"n": n, "mean": mean, "std": std, "ci95_mean": [mean - half, mean + half],
            "spread95": [float(lo), float(hi)]}


# --- per-process workload context --------------------------------------------------------
class _Workload:
    """The study's fixed inputs and reference conversions, built once per process."""

    def __init__(self, cfg: StudyConfig):
        from topkima.behavioral import TopkimaMacro, choose_adc_range
        from topkima.calibration import load_calibration
        self.cfg = cfg
        self.cal = load_calibration()
        rng = np.random.default_rng(_seq(cfg.seed, PURPOSE_WORKLOAD))
        q = rng.integers(-cfg.q_max_code, cfg.q_max_code + 1, (cfg.n_queries, cfg.d))
        k_max = 7 if cfg.array == "256x256" else 1
        self.k_levels = rng.integers(-k_max, k_max + 1, (cfg.d, cfg.n_keys))
        self.window, self.query_scale = choose_adc_range(q @ self.k_levels, cfg.k)
        self.q_codes = np.clip(np.rint(q * self.query_scale), -31, 31).astype(np.int64)
        self.scores_units = self.q_codes @ self.k_levels
        base = TopkimaMacro(self.cal, cfg.array, adc_range=self.window)
        self.n_steps = base.params.n_ramp_steps
        self.ideal = base.ideal().topk(self.q_codes, self.k_levels, k=cfg.k)
        self.ideal_codes = codes_from_firing(self.ideal.firing_cycle, self.n_steps)
        self.nominal = base.nominal().topk(self.q_codes, self.k_levels, k=cfg.k)
        self.nominal_codes = codes_from_firing(self.nominal.firing_cycle, self.n_steps)
        self.exact = exact_topk(self.scores_units, cfg.k)
        self._macros: dict[str, object] = {}
        self._lock = threading.Lock()

    def macro(self, sigma: float):
        from topkima.behavioral import TopkimaMacro
        with self._lock:
            key = sigma_label(sigma)
            if key not in self._macros:
                self._macros[key] = TopkimaMacro(self.cal, self.cfg.array, adc_range=self.window, sigma_scale=sigma)
            return self._macros[key]

    def describe(self) -> dict:
        w = self.window
        rec_nom, prec_nom = recall_precision(self.nominal.indices, self.ideal.indices)
        return {"kind": "synthetic: q uniform in ±q_max_code, keys uniform in −7…7, from the root seed",
                "n_queries": self.cfg.n_queries, "n_keys": self.cfg.n_keys, "d": self.cfg.d,
                "adc_window": {"n_cal": w.n_cal, "t_cal_units": w.t_cal_units, "t_ramp_units": w.t_ramp_units},
                "query_scale": float(self.query_scale),
                "q_codes_max_abs_after_scale": int(np.abs(self.q_codes).max()),
                "alpha_ideal": float(self.ideal.alpha.mean()), "alpha_nominal": float(self.nominal.alpha.mean()),
                "topk_recall_ideal_vs_exact_digital": recall_precision(self.ideal.indices, self.exact)[0],
                "topk_recall_nominal_vs_ideal": rec_nom, "topk_precision_nominal_vs_ideal": prec_nom}


_CONTEXTS: dict[StudyConfig, _Workload] = {}
_CONTEXT_LOCK = threading.Lock()


def _workload(cfg: StudyConfig) -> _Workload:
    key = replace(cfg, instances=1, sigma_scales=(0.0,), accuracy_instances=0, spice_instances=0)
    with _CONTEXT_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS.clear()   # one study at a time per process
            _CONTEXTS[key] = _Workload(key)
        return _CONTEXTS[key]


def instance_metrics(cfg: StudyConfig, sigma: float, index: int) -> dict:
    """Draw instance ``index`` at σ multiplier ``sigma``, convert the workload, return its metrics.

    A pure function of its arguments (and the artefact): what workers run. Times (``time_*_s``)
    are the only entries that vary between runs; they are not part of the summary's figures.
    """
    from topkima.allocator import keep_freed_memory
    keep_freed_memory()   # once per worker process (speed only)
    ctx = _workload(cfg)
    n_steps, k = ctx.n_steps, cfg.k
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    chip = ctx.macro(sigma).instance(np.random.default_rng(_seq(cfg.seed, PURPOSE_INSTANCE, index, 0)))
    lin = chip.ramp_inl_dnl()          # draws the array's mismatch
    t1 = time.perf_counter()
    res = chip.topk(ctx.q_codes, ctx.k_levels, k=k,
                    rng=np.random.default_rng(_seq(cfg.seed, PURPOSE_INSTANCE, index, 1)))
    t2 = time.perf_counter()
    # the full-ramp codes of every key: the firing cycles do not depend on the early stop, and
    # mode="conventional" with the same generator yields the same ones (tested)
    codes = codes_from_firing(res.firing_cycle, n_steps)
    code = ctx.ideal_codes.ravel()
    e = (codes - ctx.ideal_codes).ravel().astype(np.int64)
    # one integer histogram of (ideal code, error), errors −n_steps … n_steps: counts, sums and
    # sums of squares per code follow from it exactly
    width = 2 * n_steps + 1
    n_codes = max(n_steps, int(code.max(initial=0)) + 1)
    joint = np.bincount(code * width + (e + n_steps), minlength=n_codes * width).reshape(n_codes, width)
    err_values = np.arange(-n_steps, n_steps + 1)
    count = joint.sum(axis=1)
    e_sum = joint @ err_values
    e_sq = joint @ (err_values * err_values)
    # the histogram leaves out ideal code 0 (keys below the window, most of them: their error
    # is clipped at 0 from below and says little)
    err_hist = joint[1:].sum(axis=0)
    err_nom = (codes - ctx.nominal_codes).ravel().astype(np.int64)
    rec, prec = recall_precision(res.indices, ctx.ideal.indices)
    rec_nom, _ = recall_precision(res.indices, ctx.nominal.indices)
    rec_exact, _ = recall_precision(res.indices, ctx.exact)
    inl_abs = np.maximum(lin["inl_max_lsb"], -lin["inl_min_lsb"])
    dnl_abs = np.maximum(lin["dnl_max_lsb"], -lin["dnl_min_lsb"])
    edges = INL_DNL_BINS_LSB
    hist = lambda x: np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)[0]  # noqa: E731
    out = {
        "sigma_scale": float(sigma), "index": int(index),
        "topk_recall": rec, "topk_precision": prec, "topk_recall_vs_nominal": rec_nom,
        "topk_recall_vs_exact_digital": rec_exact,
        "rows_short": float(np.mean((res.indices >= 0).sum(axis=-1) < k)),
        "alpha_mean": float(res.alpha.mean()),
        "cycles_hist": np.bincount(res.cycles.astype(np.int64).ravel(), minlength=n_steps + 1).tolist(),
        "code_error_count": count.astype(np.int64).tolist(),
        "code_error_sum": np.rint(e_sum).astype(np.int64).tolist(),     # sums of integers: exact
        "code_error_sumsq": np.rint(e_sq).astype(np.int64).tolist(),
        "code_error_hist": err_hist.astype(np.int64).tolist(),           # errors −32 … 32, ideal code ≥ 1
        "code_error_vs_nominal_sumsq": int(np.dot(err_nom, err_nom)),
        "inl_max_abs_hist": hist(inl_abs).tolist(), "dnl_max_abs_hist": hist(dnl_abs).tolist(),
        "inl_max_median_lsb": float(np.median(lin["inl_max_lsb"])),
        "inl_min_median_lsb": float(np.median(lin["inl_min_lsb"])),
        "dnl_max_median_lsb": float(np.median(lin["dnl_max_lsb"])),
        "dnl_min_median_lsb": float(np.median(lin["dnl_min_lsb"])),
        "energy_per_row_j": float(res.energy_j.mean()),
    }
    out["time_draw_s"], out["time_topk_s"], out["time_metrics_s"] = t1 - t0, t2 - t1, time.perf_counter() - t2
    out["time_cpu_s"] = time.process_time() - cpu0   # this process's CPU time: what a busy machine does not inflate
    return out


# --- accuracy (MiniLM probe) ------------------------------------------------------------
_MODEL = {}


def _minilm():
    from topkima.behavioral.minilm import MiniLM
    with _CONTEXT_LOCK:
        if "model" not in _MODEL:
            _MODEL["model"] = MiniLM.load()
        return _MODEL["model"]


def _varied_hardware(cfg: StudyConfig, sigma: float, index: int):
    """A :class:`TopkimaHardware` whose chips carry ``sigma`` × the artefact's spreads, drawn from
    accuracy instance ``index``'s seed (Q·Kᵀ device draws and A·V array cells)."""
    from topkima.behavioral import TopkimaHardware, TopkimaMacro
    from topkima.calibration import load_calibration
    macro = TopkimaMacro(load_calibration(), cfg.array, sigma_scale=sigma)
    return TopkimaHardware(macro, chip_seed=_seq(cfg.seed, PURPOSE_ACCURACY, index, 0))


def accuracy_metrics(cfg: StudyConfig, sigma: float, index: int, bundle: dict) -> dict:
    """Accuracy instance ``index`` at ``sigma``: the test sentences re-embedded through MiniLM
    with this chip in every attention layer, classified by the probe trained on exact embeddings."""
    from topkima.allocator import keep_freed_memory
    keep_freed_memory()
    from topkima import sentiment
    from topkima.behavioral import AdcRange, topkima_attention
    t0 = time.perf_counter()
    model = _minilm()
    hw = _varied_hardware(cfg, sigma, index)
    windows = {int(layer): [(AdcRange(*w[:3]), float(w[3])) for w in heads]
               for layer, heads in bundle["windows"].items()}
    rng = np.random.default_rng(_seq(cfg.seed, PURPOSE_ACCURACY, index, 1))
    alphas = []

    def attention(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]   # padded rows are not queries either
        out, st = topkima_attention(q, k, v, top_k=cfg.k, mask=m, mode="topkima", macro=hw, rng=rng,
                                    return_stats=True, adc_range=windows[layer])
        alphas.append(st.alpha[np.broadcast_to(mask[:, None, :], st.alpha.shape)])
        return out

    emb = model.embed(bundle["texts"], attention=attention)
    probe = sentiment.LogisticProbe.from_json(bundle["probe"])
    pred = probe.predict(emb)
    y = np.asarray(bundle["labels"])
    pred_exact = np.asarray(bundle["pred_exact"])
    return {"sigma_scale": float(sigma), "index": int(index),
            "accuracy": sentiment.accuracy(pred, y), "flip_rate": sentiment.flip_rate(pred, pred_exact),
            "mcnemar_p": sentiment.mcnemar_p(pred_exact == y, pred == y),
            "alpha_mean_real_scores": float(np.concatenate(alphas).mean()),
            "time_s": time.perf_counter() - t0}


def _accuracy_bundle(cfg: StudyConfig, cache_dir: Path, log) -> dict:
    """Sentences, labels, the probe, exact predictions and frozen ADC windows (built once, cached)."""
    from topkima import sentiment
    from topkima.attention_eval import calibrate_windows
    path = cache_dir / "bundle.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    t0 = time.time()
    model = _minilm()
    reviews = sentiment.load_movie_reviews(sentiment.fetch_movie_reviews())
    train, test = sentiment.split_train_test(len(reviews), test_fraction=0.3, seed=cfg.seed)
    pick = np.random.default_rng(_seq(cfg.seed, PURPOSE_SENTENCES))
    train = np.sort(pick.choice(train, min(cfg.accuracy_train_sentences, len(train)), replace=False))
    test = np.sort(pick.choice(test, min(cfg.accuracy_test_sentences, len(test)), replace=False))
    texts, y = reviews.texts, np.asarray(reviews.labels)
    log(f"montecarlo: accuracy set-up: exact embeddings of {len(train)} training and {len(test)} test sentences")
    emb_train = model.embed([texts[i] for i in train])
    emb_test = model.embed([texts[i] for i in test])
    probe = sentiment.LogisticProbe.fit(emb_train, y[train])
    pred_exact = probe.predict(emb_test)
    window_texts = [texts[i] for i in train[:N_WINDOW_SENTENCES]]
    windows = calibrate_windows(model, window_texts, [cfg.k])[cfg.k]
    bundle = {"texts": [texts[i] for i in test], "labels": y[test].tolist(), "pred_exact": pred_exact.tolist(),
              "probe": probe.to_json(), "train_indices": train.tolist(), "test_indices": test.tolist(),
              "accuracy_exact": sentiment.accuracy(pred_exact, y[test]),
              "windows": {str(layer): [[w.n_cal, w.t_cal_units, w.t_ramp_units, float(s)] for w, s in heads]
                          for layer, heads in windows.items()}}
    write_atomic(path, bundle, indent=None)
    log(f"montecarlo: accuracy set-up done in {time.time() - t0:.0f} s")
    return bundle


# --- SPICE vs behavioural Monte Carlo ----------------------------------------------------
def default_golden_path() -> Path:
    """The golden SPICE conversions shipped with the tests (present in a source checkout)."""
    return Path(__file__).resolve().parents[1] / "tests" / "golden" / "column_conversions.json"


def _two_sample(a, b) -> dict:
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
      (``comparator.offset.by_vcm[*].samples_v``) against the offsets of ``n_instances`` × 256
      model comparators (``TopkimaMacro.draw_tile(...).sa_offset_v``).
    * Column codes: the golden SPICE conversions (each with its own device draws) against
      ``n_instances`` independently drawn model instances, with noise, converting the same
      inputs; compared as codes and as deviations from the nominal model's code on the same
      input (which removes the inputs' spread and leaves what variation does).
    """
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.golden import load_golden
    macro = TopkimaMacro(cal)
    p = macro.params
    n_cols, rows = 256 if macro.array == "256x256" else 128, p.n_elements * len(p.pair_scales)
    offsets = np.concatenate([macro.draw_tile(np.random.default_rng(_seq(seed, PURPOSE_SPICE, 0, i)), n_cols,
                                              rows).sa_offset_v for i in range(n_instances)])
    figures, samples = {"offset_by_vcm": []}, {"offset": []}
    for entry in cal.comparator["offset"]["by_vcm"]:
        j = int(np.argmin(np.abs(p.sa_vcm_v - entry["vcm_v"])))
        spice = np.asarray(entry["samples_v"], float)
        model = offsets[:, j]
        figures["offset_by_vcm"].append({"vcm_v": float(entry["vcm_v"]), **_two_sample(spice, model)})
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
        chip = macro.instance(np.random.default_rng(_seq(seed, PURPOSE_SPICE, 1, i, 0)))
        res = chip.topk(q, kl, k=kk, mode="conventional", rng=np.random.default_rng(_seq(seed, PURPOSE_SPICE, 1, i, 1)))
        model_codes.append(codes_of(res))
    model_codes = np.stack(model_codes)
    dev_spice = spice_codes - nominal
    dev_model = (model_codes - nominal[None, :]).ravel()
    figures["column_codes"] = {"n_golden_conversions": int(spice_codes.size), "model_instances": n_instances,
                               "codes": _two_sample(spice_codes, model_codes.ravel()),
                               "deviation_from_nominal": _two_sample(dev_spice, dev_model),
                               "note": "codes are discrete: the KS p-value is conservative; "
                                       "AD uses midranks for ties"}
    samples["codes"] = (spice_codes, model_codes.ravel(), dev_spice, dev_model)
    return figures, samples


# --- execution ---------------------------------------------------------------------------
class _Progress:
    """Tasks done / total and rate on stderr, at most once a second (and at the end)."""

    def __init__(self, total: int, already: int, log, what: str = "tasks"):
        self.total, self.done, self.started_with = total, already, already
        self.log, self.what = log, what
        self.t0 = self.last = time.monotonic()
        if already:
            log(f"montecarlo: {already} of {total} {what} already finished (resumed)")

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= 1.0 or self.done == self.total:
            self.last = now
            new = self.done - self.started_with
            rate = new / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.log(f"montecarlo: {self.done}/{self.total} {self.what} ({rate:.2f}/s, "
                     f"{'ETA %.0f s' % eta if math.isfinite(eta) else 'ETA ?'})")


def _connect(address: str, timeout_s: float):
    """A Dask client for ``address``, or :class:`StudyError` within about ``timeout_s``.

    The address is first probed with one comm handshake in a private event loop: a failed
    ``Client(...)`` leaves a half-built client whose finaliser prints a traceback at exit.
    """
    try:
        import asyncio

        from distributed import Client
        from distributed.comm import connect
    except ImportError:
        raise StudyError("--scheduler needs dask.distributed: pip install 'topkima[mc]'") from None

    async def probe():
        comm = await connect(address, timeout=timeout_s)
        await comm.close()

    try:
        asyncio.run(probe())
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as exc:   # OSError, TimeoutError, ValueError (malformed), junk from a non-Dask peer
        raise StudyError(f"cannot reach a Dask scheduler at {address!r} within {timeout_s:g} s "
                         f"({type(exc).__name__}: {exc})") from None


def _run_tasks(tasks: list, store, *, workers: int, client, progress: _Progress) -> None:
    """Run ``tasks`` [(key, fn, args)] and ``store(key, result)`` each as it completes.

    On an error or an interruption the results that have completed are stored before it
    propagates; unstarted tasks are cancelled.
    """
    if not tasks:
        return
    if client is not None:
        from distributed import as_completed
        # a unique Dask key per submission: another study on the same scheduler must never
        # share (and so receive) this one's results
        run_id = uuid.uuid4().hex[:12]
        futures = {client.submit(fn, *args, key=f"topkima-mc-{run_id}-{key}", pure=False): key
                   for key, fn, args in tasks}
        stored = set()
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                store(futures[fut], fut.result())
                stored.add(fut)
                progress.step()
        except BaseException:
            for fut in futures:   # keep what has finished, then stop the rest
                if fut not in stored and fut.status == "finished":
                    store(futures[fut], fut.result())
            raise
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()
        return
    if workers == 0:
        for key, fn, args in tasks:
            store(key, fn(*args))
            progress.step()
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    for var in THREAD_VARS:   # inherited by the spawned workers before they import numpy
        os.environ.setdefault(var, "1")
    threads_before = os.environ.get("TOPKIMA_THREADS")
    os.environ["TOPKIMA_THREADS"] = "1"   # the workers are the parallelism: one kernel thread each
    from topkima.circuits.jobs import die_with_parent
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    futures = {pool.submit(fn, *args): key for key, fn, args in tasks}   # starts the workers
    if threads_before is None:                 # this process keeps its own setting
        del os.environ["TOPKIMA_THREADS"]
    else:
        os.environ["TOPKIMA_THREADS"] = threads_before
    pending, stored = set(futures), set()
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: futures[f]):
                store(futures[fut], fut.result())
                stored.add(fut)
                progress.step()
    except BaseException:
        # keep every result that has completed, then stop the rest
        for fut in futures:
            if fut not in stored and fut.done() and not fut.cancelled() and fut.exception() is None:
                store(futures[fut], fut.result())
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --- the study ---------------------------------------------------------------------------
#: summary entries that are not results of the study: times, where it ran, the figure files
#: (they differ between otherwise identical runs; everything else is identical for any executor)
NON_RESULT_KEYS = ("wall_time_s", "timing", "execution", "figures")


def run_montecarlo(out_dir: str | Path, config: StudyConfig | None = None, *, quick: bool = False,
                   workers: int = 2, scheduler: str | None = None, scheduler_timeout_s: float = 5.0,
                   golden_path: str | Path | None = None, figures: bool = True, log=None) -> dict:
    """Run (or resume) a Monte Carlo study; write ``summary.json`` and the figures; return the summary.

    Parameters
    ----------
    out_dir : folder for ``summary.json``, the figures (PNG and SVG) and ``instances/``.
    config : :class:`StudyConfig`; default ``StudyConfig()``, or ``StudyConfig.quick()`` with ``quick``.
    workers : local worker processes (0: run in this process). Ignored with ``scheduler``.
    scheduler : address of a Dask distributed scheduler (e.g. ``tcp://host:8786``): run the
        instances there. Results are identical to a local run.
    scheduler_timeout_s : how long to try to reach the scheduler before a :class:`StudyError`.
    golden_path : golden SPICE conversions for the SPICE comparison (default: the tests' file).
    figures : write the plots.
    log : callable taking one line (progress, on stderr by default).
    """
    if log is None:
        def log(text):
            print(text, file=sys.stderr, flush=True)
    cfg = (config if config is not None else (StudyConfig.quick() if quick else StudyConfig())).validated()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise StudyError(f"workers must be an integer ≥ 0, got {workers!r}")
    t_start = time.time()
    out = Path(out_dir)
    client = _connect(scheduler, scheduler_timeout_s) if scheduler else None
    try:
        return _study(cfg, out, workers, client, scheduler, golden_path, figures, log, t_start)
    finally:
        if client is not None:
            client.close()


def _study(cfg, out, workers, client, scheduler, golden_path, figures, log, t_start) -> dict:
    from topkima.calibration import load_calibration
    cal = load_calibration()
    art, code = _artefact_sha256(cal), code_version()
    inst_id = instance_identity(cfg, art, code)
    inst_dir = out / "instances" / _hash(inst_id)
    inst_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(inst_dir / "config.json", inst_id)
    results: dict[tuple[str, int], dict] = {}
    tasks = []
    for s in cfg.sigma_scales:
        for i in range(cfg.instances):
            key = f"sigma{sigma_label(s)}_i{i:06d}"
            found = _read_json(inst_dir / f"{key}.json")
            if found is not None and found.get("index") == i and sigma_label(found.get("sigma_scale", -1)) == sigma_label(s):
                results[(sigma_label(s), i)] = found
            else:
                tasks.append((key, instance_metrics, (cfg, s, i)))
    acc_results: dict[tuple[str, int], dict] = {}
    acc_tasks, bundle, acc_dir = [], None, None
    if cfg.accuracy_instances:
        acc_id = accuracy_identity(cfg, art, code)
        acc_dir = out / "accuracy" / _hash(acc_id)
        acc_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(acc_dir / "config.json", acc_id)
        missing = []
        for s in cfg.sigma_scales:
            for i in range(cfg.accuracy_instances):
                key = f"sigma{sigma_label(s)}_i{i:04d}"
                found = _read_json(acc_dir / f"{key}.json")
                if found is not None and found.get("index") == i:
                    acc_results[(sigma_label(s), i)] = found
                else:
                    missing.append((key, s, i))
        bundle = _accuracy_bundle(cfg, acc_dir, log)   # cached after the first run
        acc_tasks = [(f"acc_{key}", accuracy_metrics, (cfg, s, i, bundle)) for key, s, i in missing]

    def store(key: str, result: dict) -> None:
        label = sigma_label(result["sigma_scale"])
        if key.startswith("acc_"):
            write_atomic(acc_dir / f"{key[4:]}.json", result, indent=None)
            acc_results[(label, result["index"])] = result
        else:
            write_atomic(inst_dir / f"{key}.json", result, indent=None)
            results[(label, result["index"])] = result

    total = len(cfg.sigma_scales) * (cfg.instances + cfg.accuracy_instances)
    progress = _Progress(total, total - len(tasks) - len(acc_tasks), log)
    where = f"Dask scheduler {scheduler}" if client is not None else (
        f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "this process")
    if tasks or acc_tasks:
        log(f"montecarlo: {len(tasks)} chip instances and {len(acc_tasks)} accuracy runs to do on {where}; "
            f"finished ones are kept in {inst_dir}")
    t_tasks = time.time()
    # the long accuracy runs first, so that the instances fill the workers around them
    _run_tasks(acc_tasks + tasks, store, workers=workers, client=client, progress=progress)
    t_tasks = time.time() - t_tasks
    spice, spice_samples = (None, None)
    if cfg.spice_instances:
        spice, spice_samples = spice_vs_behavioural(cal, cfg.seed, cfg.spice_instances, golden_path, cfg.k)
    summary = summarise(cfg, results, acc_results, bundle, spice)
    summary["workload"] = _workload(cfg).describe()
    summary["execution"] = {"where": where, "tasks_run": len(tasks) + len(acc_tasks), "instances_dir": str(inst_dir)}
    summary["timing"] = _timing(results, acc_results, t_tasks, len(tasks))
    summary["wall_time_s"] = round(time.time() - t_start, 2)
    if figures:
        from topkima.montecarlo_plots import write_figures
        summary["figures"] = write_figures(out, summary, spice_samples)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "summary.json", summary, indent=1)
    log(f"montecarlo: wrote {out / 'summary.json'} ({summary['wall_time_s']:.0f} s)")
    return summary


def _timing(results: dict, acc_results: dict, t_tasks_s: float, n_run: int) -> dict:
    per = list(results.values())
    mean = lambda name: float(np.mean([r[name] for r in per])) if per else None  # noqa: E731
    return {"task_phase_wall_s": round(t_tasks_s, 3), "instances_run_now": n_run,
            "instance_draw_s_mean": mean("time_draw_s"), "instance_topk_s_mean": mean("time_topk_s"),
            "instance_metrics_s_mean": mean("time_metrics_s"),
            "instance_cpu_s_mean": mean("time_cpu_s") if per and "time_cpu_s" in per[0] else None,
            "accuracy_run_s_mean": float(np.mean([r["time_s"] for r in acc_results.values()])) if acc_results else None}


def summarise(cfg: StudyConfig, results: dict, acc_results: dict, bundle: dict | None, spice: dict | None) -> dict:
    """Aggregate per-instance results by σ multiplier, in instance order (float64, fixed order)."""
    labels = [sigma_label(s) for s in cfg.sigma_scales]
    n_steps = len(results[(labels[0], 0)]["code_error_count"])
    summary = {"study": "Monte Carlo of the calibrated Topkima macro (see topkima.montecarlo)",
               "instances": cfg.instances, "seed": cfg.seed, "k": cfg.k, "sigma_scales": list(cfg.sigma_scales),
               "config": {**asdict(cfg), "sigma_scales": list(cfg.sigma_scales)},
               "common_random_numbers": "instance i at every σ multiplier: the same device standard normals, scaled; "
                                    "comparator-noise normals shared only between multipliers with the same "
                                    "noise window (2h per decision, h grows with σ_n)"}
    metrics = ("topk_recall", "topk_precision", "topk_recall_vs_nominal", "topk_recall_vs_exact_digital",
               "alpha_mean", "rows_short", "energy_per_row_j", "inl_max_median_lsb", "inl_min_median_lsb",
               "dnl_max_median_lsb", "dnl_min_median_lsb")
    for m in metrics:
        summary[m], summary[f"{m}_band"] = {}, {}
    summary["code_error"], summary["code_error_rms_lsb"], summary["histograms"] = {}, {}, {}
    summary["code_error_vs_nominal_rms_lsb"] = {}
    for lab in labels:
        per = [results[(lab, i)] for i in range(cfg.instances)]
        for m in metrics:
            b = band([r[m] for r in per])
            summary[m][lab], summary[f"{m}_band"][lab] = b["mean"], b
        count = np.sum([r["code_error_count"] for r in per], axis=0)
        e_sum = np.sum([r["code_error_sum"] for r in per], axis=0)
        e_sq = np.sum([r["code_error_sumsq"] for r in per], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = e_sum / count
            var = np.maximum(e_sq / count - mean ** 2, 0.0) * count / np.maximum(count - 1, 1)
            per_inst = np.array([np.asarray(r["code_error_sum"]) / np.asarray(r["code_error_count"]) for r in per])
        lo, hi = mean, mean
        if cfg.instances > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # codes no instance produced: NaN
                lo, hi = np.nanpercentile(per_inst, [2.5, 97.5], axis=0)
        ok = count > 0
        nz = lambda x: [float(v) if o else None for v, o in zip(x, ok)]  # noqa: E731
        summary["code_error"][lab] = {"ideal_code": list(range(n_steps)), "n": count.astype(int).tolist(),
                                      "mean_lsb": nz(mean), "sigma_lsb": nz(np.sqrt(var)),
                                      "instance_mean_spread95_lsb": [nz(lo), nz(hi)]}
        summary["code_error_rms_lsb"][lab] = float(np.sqrt(e_sq.sum() / count.sum()))
        summary["code_error_vs_nominal_rms_lsb"][lab] = float(np.sqrt(
            np.sum([r["code_error_vs_nominal_sumsq"] for r in per]) / count.sum()))
        summary["histograms"][lab] = {
            "code_error": np.sum([r["code_error_hist"] for r in per], axis=0).astype(int).tolist(),
            "cycles": np.sum([r["cycles_hist"] for r in per], axis=0).astype(int).tolist(),
            "inl_max_abs": np.sum([r["inl_max_abs_hist"] for r in per], axis=0).astype(int).tolist(),
            "dnl_max_abs": np.sum([r["dnl_max_abs_hist"] for r in per], axis=0).astype(int).tolist()}
    summary["histogram_bins"] = {"code_error": [-n_steps, n_steps], "cycles": [0, n_steps],
                                 "inl_dnl_edges_lsb": INL_DNL_BINS_LSB.tolist()}
    summary["accuracy_instances"] = cfg.accuracy_instances
    summary["accuracy"], summary["accuracy_band"], summary["flip_rate"], summary["flip_rate_band"] = {}, {}, {}, {}
    summary["alpha_mean_real_scores"], summary["accuracy_per_instance"], summary["flip_rate_per_instance"] = {}, {}, {}
    for lab in labels:
        per = [acc_results[(lab, i)] for i in range(cfg.accuracy_instances)] if cfg.accuracy_instances else []
        if not per:
            summary["accuracy"][lab] = summary["flip_rate"][lab] = None
            continue
        for m, dest in (("accuracy", "accuracy"), ("flip_rate", "flip_rate")):
            b = band([r[m] for r in per])
            summary[dest][lab], summary[f"{dest}_band"][lab] = b["mean"], b
        summary["alpha_mean_real_scores"][lab] = float(np.mean([r["alpha_mean_real_scores"] for r in per]))
        summary["accuracy_per_instance"][lab] = [r["accuracy"] for r in per]
        summary["flip_rate_per_instance"][lab] = [r["flip_rate"] for r in per]
    if bundle is not None:
        from topkima import sentiment
        n = len(bundle["labels"])
        summary["accuracy_exact"] = bundle["accuracy_exact"]
        summary["accuracy_exact_se"] = sentiment.binomial_se(bundle["accuracy_exact"], n)
        summary["accuracy_test_sentences"] = n
        summary["accuracy_task"] = ("VADER movie-review snippets, sign(rating) for |rating| >= 0.5, logistic probe on "
                                    "exact all-MiniLM-L6-v2 embeddings of the training subset; fixed test subset "
                                    "re-embedded with the chip in every attention layer (frozen per-head windows)")
    summary["spice_vs_behavioural"] = spice
    return summary
