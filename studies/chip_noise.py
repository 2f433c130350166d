"""The calibrated chip's score errors on training sentences, as the noise of hardware-aware
fine-tuning (issue 15, option (c): "(b) plus noise on the scores, drawn from the code errors the
calibrated behavioural chip makes on calibration data").

What is measured. For each layer and head of a MiniLM, the score the chip reads back for each
key it grants (the middle of the LSB bin of the cycle its comparator fired in, as the softmax
core receives it; ``topkima.behavioral.attention``) minus that key's true integer MAC score
q_code·k_code, both in MAC units (the units of ``scores_units``, before the query scale of the
ADC window). The error holds the ADC's rounding to its LSB, the window's saturation at its top,
and each chip's frozen mismatch and comparator noise. It is measured with the chip path itself
(``_through_macro``), not a copy of it, on the exact model's attention inputs (the exact output
goes on to the next layer, as when the ADC windows are set), on **training** sentences and on
chips whose seeds are not among those the evaluation uses (:data:`NOISE_CHIP_SEEDS`) [ours: the
noise describes the chip population, not the chips the accuracy is reported for].

How it is used [ours: the paper injects "the simulated IMA error" into Q·Kᵀ and A·V, §V, without
saying how]. The errors of each (layer, head) are kept as :data:`N_QUANTILES` quantiles; training
draws every score's error independently from them (inverse-transform sampling) and adds it to
the integer score before top-k and the softmax core (:func:`topkima.studies.tfcbp.tfcbp_attention`).
Independent draws ignore that the rounding part of a real error depends on the score itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: quantiles kept per (layer, head) of the measured error distribution
N_QUANTILES = 1024
#: the first chip seed the errors are measured on [ours]: chips 1000, 1001, …, not the
#: evaluation's chip seeds 0…n−1
NOISE_CHIP_SEED0 = 1000
NOISE_CHIP_SEEDS = (1000, 1001, 1002, 1003)


@dataclass(frozen=True)
class ChipScoreErrors:
    """Measured read-back errors of granted keys (MAC units) and the windows' LSBs."""

    errors: list[list[np.ndarray]]   #: [layer][head] 1-D errors of every granted key, MAC units
    lsb_units: np.ndarray            #: (layers, heads) the ADC window's LSB in MAC units (chip 0's window)
    top_k: int

    def quantiles(self, n: int = N_QUANTILES) -> np.ndarray:
        """(layers, heads, n) float32: the errors' quantiles at (i + ½)/n, for sampling."""
        p = (np.arange(n) + 0.5) / n
        return np.array([[np.quantile(e, p) if e.size else np.zeros(n) for e in heads]
                         for heads in self.errors], dtype=np.float32)

    def summary(self) -> dict:
        """Per layer: mean, standard deviation and mean |error| in LSB (JSON-able)."""
        out = {}
        for layer, heads in enumerate(self.errors):
            lsb = [e / self.lsb_units[layer, h] for h, e in enumerate(heads)]
            pooled = np.concatenate(lsb)
            out[str(layer)] = {"n": int(pooled.size), "mean_lsb": float(pooled.mean()),
                               "std_lsb": float(pooled.std()), "mean_abs_lsb": float(np.abs(pooled).mean())}
        return out


def measure_chip_errors(model, texts, windows: dict, top_k: int, chip_seeds=NOISE_CHIP_SEEDS,
                        seed: int = 0, batch_size: int = 32) -> ChipScoreErrors:
    """Read-back errors of the chips ``chip_seeds`` on ``texts`` (training sentences), each
    layer's head under its frozen window ``windows[layer][head]`` = (AdcRange, query scale)
    (from :func:`~topkima.studies.adc_windows.calibrate_windows` at ``top_k``). ``seed`` seeds
    the comparator noise."""
    # the chip path of mode="topkima" itself (private helpers of behavioral.attention), so
    # that the errors are the ones the evaluation's chips make, not those of a re-implementation
    from topkima.behavioral.attention import AttentionStats, _quantized_scores, _real_rows_keys, _through_macro
    from topkima.behavioral import TopkimaHardware
    from topkima.behavioral.minilm import dense_attention
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"k must be an integer ≥ 1, got {top_k!r}")
    n_layers, n_heads = len(windows), len(windows[0])
    errors = [[[] for _ in range(n_heads)] for _ in range(n_layers)]
    lsb = np.zeros((n_layers, n_heads))
    for c, chip_seed in enumerate(chip_seeds):
        hw = TopkimaHardware(chip_seed=chip_seed)
        rng = np.random.default_rng([seed, 6, chip_seed])

        def record(q, k, v, mask, layer):
            visible = np.broadcast_to(mask[:, None, :, None] & mask[:, None, None, :],
                                      (*q.shape[:2], q.shape[2], k.shape[2]))
            row_real, key_real, n_visible = _real_rows_keys(visible)
            q_codes, k_codes, units, scale = _quantized_scores(np.asarray(q, np.float64), np.asarray(k, np.float64),
                                                               row_real, key_real)
            stats = AttentionStats(mode="topkima", top_k=top_k)
            _, granted, read_back, _ = _through_macro(hw, q_codes, k_codes, units, scale, visible, n_visible,
                                                      key_real, top_k, rng, windows[layer], stats)
            true_units = np.take_along_axis(np.broadcast_to(units, visible.shape), np.maximum(granted, 0), axis=-1)
            err = read_back / scale - true_units                     # (B, H, T, slots), MAC units
            filled = granted >= 0
            for h in range(n_heads):
                errors[layer][h].append(err[:, h][filled[:, h]])
            return dense_attention(q, k, v, mask, layer)

        model.embed(texts, attention=record, batch_size=batch_size)
        if c == 0:
            params = hw.chip(windows[0][0][0]).params
            for layer in range(n_layers):
                for h, (window, q_scale) in enumerate(windows[layer]):
                    lsb[layer, h] = (params.pulse_slope * window.t_ramp_units + params.pulse_offset_units) / q_scale
    return ChipScoreErrors([[np.concatenate(e) for e in heads] for heads in errors], lsb, top_k)


def noise_table(model, reviews, train_idx, top_k: int, seed: int, n_texts: int = 128, n_chips: int = 4,
                batch_size: int = 32) -> tuple[np.ndarray, dict]:
    """The (layers, heads, :data:`N_QUANTILES`) error quantiles that hardware-aware training
    draws from, and a JSON-able summary: windows set from the usual 256 training sentences
    (as the evaluation sets them), errors measured on ``n_texts`` other training sentences."""
    from topkima.studies.adc_windows import N_WINDOW_SENTENCES, calibrate_windows
    order = np.random.default_rng([seed, 2]).permutation(len(train_idx))
    window_texts = [reviews.texts[i] for i in np.asarray(train_idx)[order[:N_WINDOW_SENTENCES]]]
    texts = [reviews.texts[i] for i in np.asarray(train_idx)[order[N_WINDOW_SENTENCES:N_WINDOW_SENTENCES + n_texts]]]
    windows = calibrate_windows(model, window_texts, [top_k], batch_size)[top_k]
    chip_seeds = tuple(range(NOISE_CHIP_SEED0, NOISE_CHIP_SEED0 + n_chips))
    measured = measure_chip_errors(model, texts, windows, top_k, chip_seeds, seed=seed, batch_size=batch_size)
    return measured.quantiles(), {"chip_seeds": list(chip_seeds), "n_sentences": len(texts),
                                  "top_k": top_k, "per_layer": measured.summary()}


def draw_noise(quantiles, key, shape):
    """Errors (MAC units) of shape (B, heads, T_q, T_k) drawn i.i.d. per score from one
    layer's ``quantiles`` (heads, n) with the JAX PRNG ``key`` (inverse-transform sampling)."""
    from topkima.studies.jax_backend import require_jax
    jax, jnp, _ = require_jax()
    quantiles = jnp.asarray(quantiles)
    index = jax.random.randint(key, shape, 0, quantiles.shape[-1])
    return quantiles[jnp.arange(quantiles.shape[0])[None, :, None, None], index]
