"""Perplexity and next-token accuracy of a causal LM on fixed windows of running text.

What is measured: each window of T tokens is an independent sequence starting at position 0
(no carried-over context, no BOS); the model predicts tokens 2 … T of the window from their
prefixes, T − 1 predictions per window. Perplexity is exp of the mean negative log-likelihood
(natural log) over all predictions of all windows (Jelinek et al., "Perplexity — a measure of the
difficulty of speech recognition tasks", JASA 62, S63, 1977); next-token accuracy is the share of
predictions whose arg-max logit is the true next token (ties: the lowest id, numpy's argmax).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PerplexityResult:
    """Result of :func:`perplexity`.

    Attributes
    ----------
    perplexity : float
        exp(mean NLL) over all predictions.
    next_token_accuracy : float
        Share of predictions whose top logit is the true next token.
    n_predictions : int
        (window tokens − 1) × windows.
    nll_per_window : np.ndarray
        (n_windows,) float64 mean NLL in nats of each window.
    """

    perplexity: float
    next_token_accuracy: float
    n_predictions: int
    nll_per_window: np.ndarray


def token_windows(token_ids, window_tokens: int, n_windows: int, first_window: int = 0) -> np.ndarray:
    """(n_windows, window_tokens) int64: consecutive, non-overlapping slices of ``token_ids``.

    Window w covers ids[w·T : (w+1)·T] for w = first_window … first_window + n_windows − 1, so
    windows chosen for fitting (e.g. 0 … 3) and for evaluation (e.g. 4 … 7) never share a token.

    Raises
    ------
    ValueError
        Non-positive sizes, or the text is too short for the windows asked for (sizes named).
    """
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token_ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    for name, value, low in (("window_tokens", window_tokens, 2), ("n_windows", n_windows, 1),
                             ("first_window", first_window, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    end = (first_window + n_windows) * window_tokens
    if end > len(ids):
        raise ValueError(f"windows {first_window}…{first_window + n_windows - 1} of {window_tokens} tokens need "
                         f"{end} tokens; the text has {len(ids)} (ask for fewer or shorter windows)")
    return ids[first_window * window_tokens:end].astype(np.int64).reshape(n_windows, window_tokens)


def next_token_nll(logits: np.ndarray, window_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prediction NLL (nats, float64) and hit flags, each (B, T − 1), from (B, T, V) logits.

    The log-sum-exp is taken in float64 after subtracting the row maximum.
    """
    logits = np.asarray(logits, dtype=np.float64)[:, :-1]
    targets = np.asarray(window_ids)[:, 1:]
    top = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    target_logits = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return log_norm - target_logits, logits.argmax(axis=-1) == targets


def perplexity(model, windows: np.ndarray, attention: Callable | None = None, batch_size: int = 1) -> PerplexityResult:
    """Perplexity and next-token accuracy of ``model`` on token windows.

    Parameters
    ----------
    model
        Anything with ``forward(ids (B, T), attention=...) -> logits (B, T, V)``, e.g.
        :class:`topkima.behavioral.models.smollm2.SmolLM2`.
    windows : np.ndarray
        (n_windows, T) token ids, e.g. from :func:`token_windows`.
    attention : callable, optional
        Passed to ``model.forward``; None = the model's exact attention.
    batch_size : int
        Windows per forward pass (memory: batch × T × vocab float32 logits).
    """
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[0] < 1 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (n_windows ≥ 1, tokens ≥ 2), got shape {windows.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    nll_rows, hit_rows = [], []
    for start in range(0, len(windows), batch_size):
        chunk = windows[start:start + batch_size]
        nll, hits = next_token_nll(model.forward(chunk, attention=attention), chunk)
        nll_rows.append(nll)
        hit_rows.append(hits)
    nll, hits = np.concatenate(nll_rows), np.concatenate(hit_rows)
    return PerplexityResult(perplexity=float(np.exp(nll.mean())), next_token_accuracy=float(hits.mean()),
                            n_predictions=int(nll.size), nll_per_window=nll.mean(axis=1))
