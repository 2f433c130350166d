"""TFCBP and quantisation-aware training: the attention the chip computes, made differentiable.

What is modelled (Topkima-Former, Dong et al., arXiv 2411.13050, §III; SPEC §3 and §6):

* **TFCBP** — *top-k forward, complete backward propagation*. The forward pass keeps the k
  largest scores of each query row and takes the softmax over those only; the backward pass is
  the dense softmax's, as a straight-through estimator: ``A = P + stop_gradient(A_topk − P)``,
  so ``∂A/∂s`` is the full softmax Jacobian while the value is the top-k one.
* **QAT** — Q (sign + 5 bit, one max-abs scale per query row), K (15 levels, one scale per
  (sequence, head) over the real keys) and V (signed 5 bit, same granularity) are rounded with
  straight-through rounding ``x + stop_gradient(rint(x) − x)``, the scales held constant in the
  backward pass. These are the scales and code ranges of ``topkima.behavioral.attention``
  (``quantize_symmetric``, :data:`Q_MAX_CODE`, :data:`K_MAX_LEVEL`, :data:`V_MAX_CODE`).
* **A 5 bit** — the forward value of A is the project's fixed-point softmax core
  (:class:`~topkima.behavioral.attention.SoftmaxCore`: base-2 exponentials from an 8-bit table,
  integer sums, a 16-bit reciprocal, A rounded to 5 bits), written here in ``jax.numpy``.

With ``jax.experimental.enable_x64()`` the forward pass reproduces numpy ``mode="topk"`` of
``topkima_attention`` on the same inputs (same kept keys, same A codes; the tests check it). In
float32 training the rounding of a few scores can differ from the float64 numpy path by one
code; the gradient does not depend on it.
"""
from __future__ import annotations

import numpy as np

from topkima.behavioral.attention import K_MAX_LEVEL, Q_MAX_CODE, V_MAX_CODE, SoftmaxCore
from topkima.studies.jax_backend import require_jax

jax, jnp, _ = require_jax()
_sg = jax.lax.stop_gradient


def ste_round(x):
    """rint(x) in the forward pass, the identity in the backward pass (straight-through)."""
    return x + _sg(jnp.rint(x) - x)


def quantize_ste(x, max_code: int, valid, per_row: bool = False):
    """Straight-through symmetric max-abs quantisation, as ``quantize_symmetric``.

    ``x`` (..., T, d); ``valid`` (..., T) the tokens that set the scale. Returns (codes, scale):
    codes = rint(clip(x / s, ±max_code)) in the forward pass with gradient ∂codes/∂x = 1/s; s is
    max|x| / max_code per block (..., 1, 1), or per token (..., T, 1) with ``per_row``, held
    constant in the backward pass; a block or row with nothing valid (or all zeros) has s = 1.
    """
    magnitude = jnp.where(valid[..., None], jnp.abs(_sg(x)), 0)
    m = magnitude.max(axis=-1, keepdims=True) if per_row else magnitude.max(axis=(-2, -1), keepdims=True)
    scale = m.astype(x.dtype) / max_code
    scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    y = x / scale
    return y + _sg(jnp.rint(jnp.clip(y, -max_code, max_code)) - y), scale


def topk_kept(rank_scores, visible, k: int):
    """Per row, the ``k`` largest visible ``rank_scores`` (ties to the lower key index, as numpy
    ``mode="topk"``): a boolean mask (..., T_q, T_k). Rows with fewer visible keys keep them all."""
    kk = min(int(k), rank_scores.shape[-1])
    masked = jnp.where(visible, _sg(rank_scores), -jnp.inf)
    values, index = jax.lax.top_k(masked, kk)       # stable: equal values in index order
    hit = (index[..., :, None] == jnp.arange(rank_scores.shape[-1])) & (values > -jnp.inf)[..., None]
    return hit.any(axis=-2)


def softmax_core(scores, kept, core: SoftmaxCore = SoftmaxCore()):
    """The fixed-point softmax core of ``SoftmaxCore.__call__`` in jax (no gradient): A over the
    ``kept`` entries of the last axis (codes / (2^a_bits − 1)), 0 elsewhere."""
    scores = _sg(scores)
    s_max = jnp.where(kept, scores, -jnp.inf).max(axis=-1, keepdims=True)
    s_max = jnp.where(jnp.isfinite(s_max), s_max, 0)
    x = jnp.where(kept, (scores - s_max) * np.log2(np.e), 0.0)
    one = 1 << core.x_frac_bits
    x_fx = jnp.maximum(jnp.rint(x * one).astype(jnp.int32), -core.max_shift * one)
    ipart = jnp.floor_divide(x_fx, one)
    frac = x_fx - ipart * one
    lut = jnp.asarray(np.rint(2.0 ** (np.arange(one) / one) * (1 << core.lut_bits)).astype(np.int32))
    e = jnp.where(kept, jnp.right_shift(lut[frac], -ipart), 0)
    total = e.sum(axis=-1, keepdims=True)
    recip = jnp.where(total > 0, (1 << core.recip_bits) // jnp.maximum(total, 1), 0)
    a_max = (1 << core.a_bits) - 1
    a_code = jnp.clip(jnp.rint((e * recip * a_max).astype(scores.dtype) / (1 << core.recip_bits)), 0, a_max)
    return a_code / a_max


def dense_softmax(scores, visible):
    """softmax over the visible keys (float; padded keys get probability 0, a row with no
    visible key stays finite)."""
    s = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)
    s = s - s.max(axis=-1, keepdims=True)
    e = jnp.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def tfcbp_softmax(scores, visible, k: int, kept=None, core: SoftmaxCore = SoftmaxCore()):
    """TFCBP: the value of the fixed-point softmax over each row's k kept scores, the gradient
    of the dense softmax over all visible scores. ``kept`` defaults to :func:`topk_kept` of
    ``scores``."""
    if kept is None:
        kept = topk_kept(scores, visible, k)
    dense = dense_softmax(scores, visible)
    return dense + _sg(softmax_core(scores, kept, core) - dense)


def tfcbp_attention(q, k, v, mask, top_k: int, core: SoftmaxCore = SoftmaxCore(), score_noise=None):
    """One layer's heads with TFCBP + QAT: q, k, v (B, heads, T, d), q already carrying 1/√d;
    ``mask`` (B, T) True on real tokens (padded rows are not queries, padded keys not keys).
    ``score_noise`` (B, heads, T, T), optional: errors in MAC units added to the integer scores
    before top-k and the softmax core, as the chip's read-back errors (hardware-aware training,
    :mod:`topkima.studies.chip_noise`); a constant for the gradient.

    Forward: the quantised scores' top-k (on the integer MAC values q_code·k_code), the softmax
    core over those, A·V on the 5-bit V codes: numpy ``mode="topk"`` of ``topkima_attention``.
    Backward: straight-through rounding and the dense softmax's gradient."""
    if int(top_k) < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    visible = mask[:, None, :, None] & mask[:, None, None, :]
    row_real = visible.any(axis=-1)                                   # (B, 1, T)
    key_real = jnp.broadcast_to(mask[:, None, :], q.shape[:-1])       # (B, H, T)
    q_codes, s_q = quantize_ste(q, Q_MAX_CODE, jnp.broadcast_to(row_real, q.shape[:-1]), per_row=True)
    k_codes, s_k = quantize_ste(k, K_MAX_LEVEL, key_real)
    v_codes, s_v = quantize_ste(v, V_MAX_CODE, key_real)
    units = q_codes @ jnp.swapaxes(k_codes, -1, -2)                   # integer-valued MAC results
    if score_noise is not None:
        units = units + _sg(jnp.asarray(score_noise, units.dtype))    # the chip's read-back error
    scores = units * (s_q * s_k)
    kept = topk_kept(units, visible, top_k) & visible
    a = tfcbp_softmax(scores, visible, top_k, kept=kept, core=core)
    a = jnp.where(row_real[..., None], a, 0.0)                        # padded rows: no output
    return (a @ v_codes) * s_v
