"""The study's task accuracy: all-MiniLM-L6-v2 probe accuracy with a varied chip in the attention.

Per accuracy instance another chip (``sigma`` × the artefact's spreads, drawn from the
instance's seed) sits in every attention layer; a fixed subset of VADER movie-review test
sentences is re-embedded and classified by a logistic probe trained once on the exact model's
embeddings of a training subset (the task of :mod:`topkima.studies.attention_eval`; Hutto &
Gilbert, ICWSM 2014; Pang & Lee, ACL 2005). The set-up (sentences, probe, exact predictions,
frozen per-head ADC windows) is the *bundle*, built once and cached beside the results.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_json_atomic
from topkima.studies.allocator import keep_freed_memory
from topkima.studies.adc_windows import N_WINDOW_SENTENCES
from topkima.studies.montecarlo.config import StudyConfig
from topkima.studies.montecarlo.seeds import PURPOSE_ACCURACY, PURPOSE_SENTENCES, seed_sequence
from topkima.studies import process_models

def _varied_hardware(cfg: StudyConfig, sigma: float, index: int):
    """A :class:`TopkimaHardware` whose chips carry ``sigma`` × the artefact's spreads, drawn from
    accuracy instance ``index``'s seed (Q·Kᵀ device draws and A·V array cells)."""
    from topkima.behavioral import TopkimaHardware, TopkimaMacro
    from topkima.calibration import load_calibration
    macro = TopkimaMacro(load_calibration(), cfg.array, sigma_scale=sigma)
    return TopkimaHardware(macro, chip_seed=seed_sequence(cfg.seed, PURPOSE_ACCURACY, index, 0))


def accuracy_metrics(cfg: StudyConfig, sigma: float, index: int, bundle: dict) -> dict:
    """Accuracy instance ``index`` at ``sigma``: the test sentences re-embedded through MiniLM
    with this chip in every attention layer, classified by the probe trained on exact embeddings."""
    from topkima.behavioral import AdcRange, topkima_attention
    from topkima.studies import probe as probes
    keep_freed_memory()   # once per worker process (speed only)
    t0 = time.perf_counter()
    model = process_models.minilm()
    hw = _varied_hardware(cfg, sigma, index)
    windows = {int(layer): [(AdcRange(*w[:3]), float(w[3])) for w in heads]
               for layer, heads in bundle["windows"].items()}
    rng = np.random.default_rng(seed_sequence(cfg.seed, PURPOSE_ACCURACY, index, 1))
    alphas = []

    def attention(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]   # padded rows are not queries either
        out, st = topkima_attention(q, k, v, top_k=cfg.k, mask=m, mode="topkima", macro=hw, rng=rng,
                                    return_stats=True, adc_range=windows[layer])
        alphas.append(st.alpha[np.broadcast_to(mask[:, None, :], st.alpha.shape)])
        return out

    emb = model.embed(bundle["texts"], attention=attention)
    probe = probes.LogisticProbe.from_json(bundle["probe"])
    pred = probe.predict(emb)
    y = np.asarray(bundle["labels"])
    pred_exact = np.asarray(bundle["pred_exact"])
    return {"sigma_scale": float(sigma), "index": int(index),
            "accuracy": probes.accuracy(pred, y), "flip_rate": probes.flip_rate(pred, pred_exact),
            "mcnemar_p": probes.mcnemar_p(pred_exact == y, pred == y),
            "alpha_mean_real_scores": float(np.concatenate(alphas).mean()),
            "time_s": time.perf_counter() - t0}


def accuracy_bundle(cfg: StudyConfig, cache_dir: Path, log) -> dict:
    """Sentences, labels, the probe, exact predictions and frozen ADC windows (built once, cached)."""
    from topkima.studies import movie_reviews, probe as probes
    from topkima.studies.adc_windows import calibrate_windows
    path = cache_dir / "bundle.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    t0 = time.time()
    model = process_models.minilm()
    reviews = movie_reviews.load_movie_reviews(movie_reviews.fetch_movie_reviews())
    train, test = movie_reviews.split_train_test(len(reviews), test_fraction=0.3, seed=cfg.seed)
    pick = np.random.default_rng(seed_sequence(cfg.seed, PURPOSE_SENTENCES))
    train = np.sort(pick.choice(train, min(cfg.accuracy_train_sentences, len(train)), replace=False))
    test = np.sort(pick.choice(test, min(cfg.accuracy_test_sentences, len(test)), replace=False))
    texts, y = reviews.texts, np.asarray(reviews.labels)
    log(f"montecarlo: accuracy set-up: exact embeddings of {len(train)} training and {len(test)} test sentences")
    emb_train = model.embed([texts[i] for i in train])
    emb_test = model.embed([texts[i] for i in test])
    probe = probes.LogisticProbe.fit(emb_train, y[train])
    pred_exact = probe.predict(emb_test)
    window_texts = [texts[i] for i in train[:N_WINDOW_SENTENCES]]
    windows = calibrate_windows(model, window_texts, [cfg.k])[cfg.k]
    bundle = {"texts": [texts[i] for i in test], "labels": y[test].tolist(), "pred_exact": pred_exact.tolist(),
              "probe": probe.to_json(), "train_indices": train.tolist(), "test_indices": test.tolist(),
              "accuracy_exact": probes.accuracy(pred_exact, y[test]),
              "windows": {str(layer): [[w.n_cal, w.t_cal_units, w.t_ramp_units, float(s)] for w, s in heads]
                          for layer, heads in windows.items()}}
    write_json_atomic(path, bundle, indent=None)
    log(f"montecarlo: accuracy set-up done in {time.time() - t0:.0f} s")
    return bundle
