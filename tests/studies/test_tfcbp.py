"""TFCBP + QAT (topkima.studies.tfcbp) against the numpy attention pipeline and jax.grad.

Needs the optional [train] extra (JAX, optax): without it these tests skip, saying how to install.
"""
import numpy as np
import pytest

pytest.importorskip("jax", reason="the [train] extra is not installed: pip install -e '.[train]'")
pytest.importorskip("optax", reason="the [train] extra is not installed: pip install -e '.[train]'")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from topkima.behavioral.attention import K_MAX_LEVEL, Q_MAX_CODE, topkima_attention  # noqa: E402
from topkima.behavioral.quantize import quantize_symmetric  # noqa: E402
from topkima.studies import tfcbp  # noqa: E402


def _inputs(seed=0, batch=3, heads=4, tokens=11, d=32):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, heads, tokens, d)) * 0.3
    k = rng.normal(size=(batch, heads, tokens, d))
    v = rng.normal(size=(batch, heads, tokens, d))
    lengths = np.array([tokens, 7, 4])[:batch]
    mask = np.arange(tokens)[None, :] < lengths[:, None]
    return q, k, v, mask


def test_ste_round_rounds_forward_and_passes_gradient():
    x = jnp.array([-1.6, -0.4, 0.49, 2.5, 3.51])
    assert np.array_equal(tfcbp.ste_round(x), np.rint(np.asarray(x)))
    assert np.array_equal(jax.grad(lambda y: jnp.sum(tfcbp.ste_round(y) * jnp.arange(5.0)))(x), np.arange(5.0))


@pytest.mark.parametrize("max_code,per_row", [(Q_MAX_CODE, True), (K_MAX_LEVEL, False)])
def test_quantize_ste_codes_equal_the_project_quantiser(max_code, per_row):
    q, _, _, mask = _inputs()
    valid = np.broadcast_to(mask[:, None, :], q.shape[:-1])
    expected, scale = quantize_symmetric(q, max_code, valid, per_row=per_row)
    with jax.enable_x64(True):
        codes, s = tfcbp.quantize_ste(jnp.asarray(q), max_code, jnp.asarray(valid), per_row=per_row)
        assert np.array_equal(np.asarray(codes), expected)
        np.testing.assert_allclose(np.asarray(s), scale, rtol=1e-15)   # XLA may divide by a reciprocal


def test_tfcbp_softmax_gradient_is_the_dense_softmax_gradient():
    rng = np.random.default_rng(1)
    scores = jnp.asarray(rng.normal(size=(2, 3, 9, 9)) * 3, dtype=jnp.float32)
    visible = jnp.asarray(np.arange(9)[None, None, None, :] < np.array([9, 6])[:, None, None, None])
    weights = jnp.asarray(rng.normal(size=scores.shape), dtype=jnp.float32)
    for k in (1, 2, 5):
        g_tfcbp = jax.grad(lambda s: jnp.sum(weights * tfcbp.tfcbp_softmax(s, visible, k)))(scores)
        g_dense = jax.grad(lambda s: jnp.sum(weights * tfcbp.dense_softmax(s, visible)))(scores)
        np.testing.assert_array_equal(np.asarray(g_tfcbp), np.asarray(g_dense))
        # while the forward value is the top-k one: at most k keys per row, a different value
        a = np.asarray(tfcbp.tfcbp_softmax(scores, visible, k))
        assert (np.count_nonzero(a, axis=-1) <= k).all()
        assert not np.allclose(a, np.asarray(tfcbp.dense_softmax(scores, visible)))


def test_dense_softmax_matches_a_loop_reference():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(4, 6))
    visible = np.arange(6)[None, :] < np.array([6, 3, 1, 5])[:, None]
    p = np.asarray(tfcbp.dense_softmax(jnp.asarray(scores, jnp.float32), jnp.asarray(visible)))
    for r in range(4):
        e = [np.exp(scores[r, c] - scores[r, visible[r]].max()) if visible[r, c] else 0.0 for c in range(6)]
        np.testing.assert_allclose(p[r], np.array(e) / sum(e), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_tfcbp_attention_forward_equals_numpy_topk_mode(k):
    q, kk, v, mask = _inputs(seed=k)
    m = mask[:, None, :, None] & mask[:, None, None, :]
    expected, stats = topkima_attention(q, kk, v, top_k=k, mask=m, mode="topk", return_stats=True)
    with jax.enable_x64(True):
        got = tfcbp.tfcbp_attention(*(jnp.asarray(x) for x in (q, kk, v)), jnp.asarray(mask), k)
        # the same kept keys
        q_codes, _ = tfcbp.quantize_ste(jnp.asarray(q), Q_MAX_CODE, jnp.asarray(np.broadcast_to(
            m.any(-1), q.shape[:-1])), per_row=True)
        k_codes, _ = tfcbp.quantize_ste(jnp.asarray(kk), K_MAX_LEVEL, jnp.asarray(np.broadcast_to(
            mask[:, None, :], kk.shape[:-1])))
        kept = tfcbp.topk_kept(q_codes @ jnp.swapaxes(k_codes, -1, -2), jnp.asarray(m), k)
    assert np.array_equal(np.asarray(kept) & m, stats.kept)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


def test_tfcbp_attention_float32_is_close_to_numpy_topk_mode():
    q, k, v, mask = _inputs(seed=7)
    m = mask[:, None, :, None] & mask[:, None, None, :]
    expected = topkima_attention(q, k, v, top_k=5, mask=m, mode="topk")
    got = tfcbp.tfcbp_attention(*(jnp.asarray(x, jnp.float32) for x in (q, k, v)), jnp.asarray(mask), 5)
    # one A code (1/31) may differ where float32 rounds a score differently: compare row norms
    err = np.abs(np.asarray(got) - expected).max() / np.abs(expected).max()
    assert err < 0.05


def test_tfcbp_attention_q_and_k_gradients_are_those_of_dense_attention_on_the_same_codes():
    """Through Q and K only the softmax's backward pass matters, and that is the dense one."""
    q, k, v, mask = _inputs(seed=3)
    q, k, v = (jnp.asarray(x, jnp.float32) for x in (q, k, v))
    mask = jnp.asarray(mask)
    w = jnp.asarray(np.random.default_rng(4).normal(size=q.shape), jnp.float32)

    def dense_qat(q, k, v):
        visible = mask[:, None, :, None] & mask[:, None, None, :]
        row_real = jnp.broadcast_to(visible.any(-1), q.shape[:-1])
        key_real = jnp.broadcast_to(mask[:, None, :], q.shape[:-1])
        qc, sq = tfcbp.quantize_ste(q, Q_MAX_CODE, row_real, per_row=True)
        kc, sk = tfcbp.quantize_ste(k, K_MAX_LEVEL, key_real)
        vc, sv = tfcbp.quantize_ste(v, 15, key_real)
        a = tfcbp.dense_softmax((qc @ jnp.swapaxes(kc, -1, -2)) * (sq * sk), visible)
        return (jnp.where(row_real[..., None], a, 0.0) @ vc) * sv

    loss_t = lambda q, k: jnp.sum(w * tfcbp.tfcbp_attention(q, k, v, mask, 5))  # noqa: E731
    loss_d = lambda q, k: jnp.sum(w * dense_qat(q, k, v))  # noqa: E731
    # the backward pass uses A·V's incoming gradient g·vᵀ, the same in both
    gq_t, gk_t = jax.grad(loss_t, argnums=(0, 1))(q, k)
    gq_d, gk_d = jax.grad(loss_d, argnums=(0, 1))(q, k)
    np.testing.assert_allclose(np.asarray(gq_t), np.asarray(gq_d), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gk_t), np.asarray(gk_d), rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(gq_t)).max() > 0


def test_tfcbp_attention_refuses_k_below_one():
    q, k, v, mask = _inputs()
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        tfcbp.tfcbp_attention(q, k, v, jnp.asarray(mask), 0)
