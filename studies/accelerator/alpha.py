"""α, the Topkima macro's early-stop fraction, for the accelerator estimate: measured on real
scores (all-MiniLM-L6-v2 on VADER movie-review sentences packed to the sequence length, cached
in the output folder), read from an attention run's ``summary.json``, or given."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from topkima.behavioral.accelerator import ConfigError
from topkima.circuits.files import write_json_atomic
from topkima.studies import movie_reviews
from topkima.studies.code_version import code_version

#: positions of all-MiniLM-L6-v2: α is measured at most at this length
MAX_MINILM_TOKENS = 512


def measure_alpha(seq_len: int, k: int, n_sequences: int = 4, seed: int = 0, log=print) -> dict:
    """Mean early-stop fraction α of the calibrated Topkima macro on real MiniLM scores.

    all-MiniLM-L6-v2 runs on ``n_sequences`` sequences of ``seq_len`` tokens (at most 512, the
    model's positions), each VADER movie-review sentences (seeded order) concatenated until the
    length is reached; every layer's attention goes through ``topkima_attention(mode="topkima")``
    (chip seed ``seed``, ADC windows per head from the batch's own scores). Also returns the
    fraction of query inputs with a non-zero PWM code (the macro's input activity).
    """
    from topkima.behavioral import TopkimaHardware, topkima_attention
    from topkima.behavioral.attention import quantized_scores
    from topkima.behavioral.minilm import MiniLM

    n_tok = min(int(seq_len), MAX_MINILM_TOKENS)
    model = MiniLM.load(max_tokens=n_tok)
    texts = movie_reviews.load_movie_reviews(movie_reviews.fetch_movie_reviews()).texts
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
    h = hashlib.sha256(json.dumps([min(seq_len, MAX_MINILM_TOKENS), k, n_sequences, seed, code_version(),
                                   hashlib.sha256(default_artefact_path().read_bytes()).hexdigest()]).encode())
    return h.hexdigest()[:16]


def resolve_alpha(alpha: float | None, alpha_from: str | None, alpha_sequences: int, seed: int, seq_len: int,
                  k: int, out: Path, log) -> dict:
    """α and its source: ``alpha`` (--alpha), ``alpha_from`` (--alpha-from FILE), or measured on
    ``alpha_sequences`` packed sequences with chip seed ``seed`` (cached in ``out``)."""
    if alpha is not None:
        if not 0 < alpha <= 1:
            raise ConfigError(f"--alpha must lie in (0, 1], got {alpha}")
        return {"alpha_mean": float(alpha), "source": "given on the command line (--alpha)", "input_activity": None}
    if alpha_from is not None:
        path = Path(alpha_from)
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
    key = _alpha_cache_key(seq_len, k, alpha_sequences, seed)
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if key in cached:
        log(f"α from the cache {cache}")
        return cached[key]
    log(f"measuring α on all-MiniLM-L6-v2 at {min(seq_len, MAX_MINILM_TOKENS)} tokens, k = {k} "
        f"(cached in {cache}; --alpha X skips this)")
    result = measure_alpha(seq_len, k, alpha_sequences, seed, log=log)
    if seq_len > MAX_MINILM_TOKENS:
        result["source"] += f" (MiniLM has {MAX_MINILM_TOKENS} positions: measured there, used at {seq_len})"
    cached[key] = result
    write_json_atomic(cache, cached, indent=1)
    return result
