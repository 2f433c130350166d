"""Frozen attention ranges (issue 14 item 1): causality, the key-scale policies, storage."""
import json
import warnings

import numpy as np
import pytest

from topkima.behavioral import MODES, AttentionRanges, TopkimaHardware, topkima_attention

HEADS, T, D = 2, 40, 16


def _tensors(seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((1, HEADS, T, D)) / np.sqrt(D)
    k = rng.standard_normal((1, HEADS, T, D)) * rng.uniform(0.2, 3.0, D)    # channels of unequal range
    v = rng.standard_normal((1, HEADS, T, D))
    return q, k, v


CAUSAL = np.tril(np.ones((T, T), dtype=bool))


@pytest.fixture(scope="module")
def hardware():
    return TopkimaHardware(chip_seed=2)


@pytest.mark.parametrize("policy", ["sequence-head", "channel"])
def test_frozen_ranges_keep_rows_blind_to_the_keys_they_cannot_see(policy, hardware):
    ranges = AttentionRanges.fit(*_tensors(1), top_k=5, mask=CAUSAL, policy=policy)   # fitted on other data
    q, k, v = _tensors(2)
    k2, v2 = k.copy(), v.copy()
    rng = np.random.default_rng(3)
    k2[..., 30:, :] = rng.standard_normal(k2[..., 30:, :].shape) * 10     # the future: larger, other values
    v2[..., 30:, :] = rng.standard_normal(v2[..., 30:, :].shape) * 10
    for mode in MODES:
        run = lambda kk, vv: topkima_attention(q, kk, vv, top_k=5, mask=CAUSAL, mode=mode, macro=hardware,  # noqa: E731
                                               rng=np.random.default_rng(4), ranges=ranges)
        before, after = run(k, v), run(k2, v2)
        np.testing.assert_array_equal(before[..., :30, :], after[..., :30, :], err_msg=mode)
        assert not np.array_equal(before[..., 30:, :], after[..., 30:, :])            # the change is seen later
    # the chip with k + m candidates and the exact digital top-k among them (m = 5)
    run = lambda kk, vv: topkima_attention(q, kk, vv, top_k=5, mask=CAUSAL, mode="topkima", macro=hardware,  # noqa: E731
                                           rng=np.random.default_rng(4), ranges=ranges, readback="exact",
                                           candidates=10)
    before, after = run(k, v), run(k2, v2)
    np.testing.assert_array_equal(before[..., :30, :], after[..., :30, :], err_msg="candidates")
    assert not np.array_equal(before[..., 30:, :], after[..., 30:, :])
    # without frozen ranges the quantised modes leak the future into the past, and say so
    with pytest.warns(UserWarning, match="causal"):
        leaky = topkima_attention(q, k, v, top_k=5, mask=CAUSAL, mode="topk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaky2 = topkima_attention(q, k2, v2, top_k=5, mask=CAUSAL, mode="topk")
    assert not np.array_equal(leaky[..., :30, :], leaky2[..., :30, :])


def test_channel_policy_folds_key_scales_into_the_query():
    q, k, v = _tensors(5)
    for policy in ("sequence-head", "channel"):
        r = AttentionRanges.fit(q, k, v, top_k=5, policy=policy)
        q_codes, k_codes, units, scale, v_codes, s_v = r.quantize(q, k, v, np.ones(q.shape[:-1], bool))
        assert np.abs(k_codes).max() == 7 and np.abs(q_codes).max() == 31
        # the codes' product, scaled, is q·k up to the rounding of both operands
        exact = q @ np.swapaxes(k, -1, -2)
        err = np.abs(units * scale - exact)
        if policy == "channel":
            # per channel, k rounds to half its own step; the query carries that step
            q_step = np.abs(q * r.k_scale).max(axis=-1, keepdims=True) / 31
            bound = (np.abs(q * r.k_scale) @ np.full((1, HEADS, D, T), 0.5)
                     + q_step / 2 * (np.abs(k_codes) + 0.5).sum(axis=-1)[..., None, :] * 1.0)
        else:
            s_k = r.k_scale
            q_step = np.abs(q).max(axis=-1, keepdims=True) / 31
            bound = (np.abs(q).sum(axis=-1, keepdims=True) * s_k / 2
                     + q_step / 2 * np.abs(np.swapaxes(k, -1, -2)).sum(axis=-2, keepdims=True) * 1.0 + q_step * s_k * D)
        assert np.all(err <= bound + 1e-12)
        np.testing.assert_array_equal(v_codes, np.clip(np.rint(v / r.v_scale), -15, 15))


def test_ranges_round_trip_through_json_and_refuse_a_mismatched_call():
    r = AttentionRanges.fit(*_tensors(6), top_k=5, mask=CAUSAL, policy="channel")
    back = AttentionRanges.from_json(json.loads(json.dumps(r.to_json())))
    for name in ("k_scale", "v_scale", "av_full_scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    assert back.qk_windows == r.qk_windows and back.key_policy == "channel" and back.top_k == 5
    q, k, v = _tensors(7)
    with pytest.raises(ValueError, match="top_k = 5"):
        topkima_attention(q, k, v, top_k=3, mask=CAUSAL, mode="topk", ranges=r)
    with pytest.raises(ValueError, match="heads"):
        topkima_attention(q[:, :1], k[:, :1], v[:, :1], top_k=5, mask=CAUSAL, mode="topk", ranges=r)
    with pytest.raises(ValueError, match="not both"):
        topkima_attention(q, k, v, top_k=5, mode="topk", ranges=r, adc_range=r.qk_windows[0])
    with pytest.raises(ValueError, match="policy"):
        AttentionRanges.fit(q, k, v, top_k=5, policy="row")
    with pytest.raises(ValueError, match="not stored attention ranges"):
        AttentionRanges.from_json({"top_k": 5})
    # a head whose calibration outputs were all 0 stores an A·V full scale of 0 (as fit gives it);
    # a negative one is refused
    stored = r.to_json()
    stored["av_full_scale"] = [0.0] + stored["av_full_scale"][1:]
    assert AttentionRanges.from_json(stored).av_full_scale[0] == 0.0
    stored["av_full_scale"][0] = -1.0
    with pytest.raises(ValueError, match="full scale below 0"):
        AttentionRanges.from_json(stored)


@pytest.mark.parametrize("design", [{}, {"readback": "exact", "candidates": 8}])
def test_rows_longer_than_one_array_stay_causal(hardware, design):
    """With a causal mask over 300 keys (two arrays), a row's keys and output do not depend on
    how many later tokens the sequence has: the same rows of the sequence cut to 200 tokens agree."""
    rng = np.random.default_rng(8)
    t = 300
    make = lambda: (rng.standard_normal((1, 1, t, D)) / np.sqrt(D), rng.standard_normal((1, 1, t, D)),  # noqa: E731
                    rng.standard_normal((1, 1, t, D)))
    causal = np.tril(np.ones((t, t), dtype=bool))
    ranges = AttentionRanges.fit(*make(), top_k=5, mask=causal)
    q, k, v = make()
    run = lambda n: topkima_attention(q[..., :n, :], k[..., :n, :], v[..., :n, :], top_k=5, mask=causal[:n, :n],  # noqa: E731
                                      mode="topkima", macro=hardware, rng=np.random.default_rng(9), ranges=ranges,
                                      return_stats=True, **design)
    (full, s_full), (cut, s_cut) = run(t), run(200)
    np.testing.assert_array_equal(full[..., :200, :], cut)
    np.testing.assert_array_equal(s_full.kept[..., :200, :200], s_cut.kept)
    assert np.all(s_full.kept.sum(axis=-1) <= 5)
