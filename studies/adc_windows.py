"""Frozen ADC windows for real attention scores: what a chip is set to before it sees test data.

Per (layer, head) of a model, the calibration cells and pulse widths of the Topkima macro's
ramp ADC are chosen once from the exact model's quantised scores on training sentences, with
:func:`topkima.behavioral.macro.choose_adc_range` [ours: the paper does not say how its
window was set]. Used by the attention evaluation and the Monte Carlo accuracy study.
"""
from __future__ import annotations

import numpy as np

#: training sentences whose scores set each (layer, head)'s frozen ADC window [ours]
N_WINDOW_SENTENCES = 256


def calibrate_windows(model, texts, ks, batch_size: int = 32, top_quantile: float = 0.75,
                      bottom_quantile: float = 0.1) -> dict:
    """Frozen ADC windows per k, layer and head from the exact model's scores on ``texts``.

    A chip sets its window (calibration cells, pulse widths) before it sees test data: here
    from the quantised scores of training sentences, with :func:`choose_adc_range` per head
    (window top and bottom at ``top_quantile`` / ``bottom_quantile`` of the rows' best and k-th
    best scores). Returns {k: {layer: [(AdcRange, query scale) per head]}}.
    """
    from topkima.behavioral.attention import quantized_scores, row_top_scores
    from topkima.behavioral.macro import choose_adc_range
    from topkima.behavioral.minilm import dense_attention
    n_best = max(ks)
    samples: dict[int, list[list[np.ndarray]]] = {}

    def record(q, k, v, mask, layer):
        m = mask[:, None, :, None] & mask[:, None, None, :]
        _, _, scores, _ = quantized_scores(q, k, np.broadcast_to(m, (*q.shape[:2], q.shape[2], k.shape[2])))
        per_head = row_top_scores(scores, np.broadcast_to(m, scores.shape), n_best)
        samples.setdefault(layer, [[] for _ in per_head])
        for h, rows in enumerate(per_head):
            samples[layer][h].append(rows)
        return dense_attention(q, k, v, mask, layer)

    model.embed(texts, attention=record, batch_size=batch_size)
    windows = {}
    for kk in ks:
        windows[kk] = {}
        for layer, heads in samples.items():
            chosen = []
            for rows in heads:
                rows = np.concatenate(rows)
                n_real = np.sum(rows > -1e29, axis=1)
                k_eff = min(kk, int(n_real.max()))     # rows shorter than k keep all their keys
                chosen.append(choose_adc_range(rows[n_real >= k_eff], k_eff, top_quantile=top_quantile,
                                               bottom_quantile=bottom_quantile))
            windows[kk][layer] = chosen
    return windows
