"""Key order in the array (which key wins a tie) and the exact read-back of the kept keys (issue 14 item 6)."""
import warnings

import numpy as np
import pytest

from topkima.behavioral import TopkimaHardware, TopkimaMacro, topkima_attention
from topkima.behavioral.attention import quantized_scores
from topkima.behavioral.key_order import column_keys, kth_grant_ties
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def hardware():
    return TopkimaHardware(TopkimaMacro(load_calibration()), chip_seed=5)


def _qkv(seed, b=1, h=2, t=24, d=16):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.6, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)))


def _run(hw, q, k, v, mask, seed, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # per-call ranges with a causal mask: fine for these comparisons
        return topkima_attention(q, k, v, top_k=5, mask=mask, mode="topkima", macro=hw,
                                 rng=np.random.default_rng(seed), return_stats=True, **kwargs)


def test_column_keys_reverse_each_key_set_within_its_written_keys():
    table = column_keys(np.array([[4, 6]]), 6, "newest-first")
    np.testing.assert_array_equal(table, [[[3, 2, 1, 0, 4, 5], [5, 4, 3, 2, 1, 0]]])
    np.testing.assert_array_equal(np.take_along_axis(table, table, axis=-1)[0, 0], np.arange(6))   # its own inverse
    np.testing.assert_array_equal(column_keys(np.array([3]), 5, "token"), [[0, 1, 2, 3, 4]])
    with pytest.raises(ValueError, match="key_order"):
        column_keys(np.array([3]), 5, "oldest-last")


def _ties_reference(firing, k, n_steps):
    """The arbiter by hand: grants in (cycle, address) order, at most k; a tie when a column that
    fired in the last grant's cycle was left out."""
    out = np.zeros(firing.shape[:-1], dtype=bool)
    for idx in np.ndindex(*firing.shape[:-1]):
        order = sorted((int(c), a) for a, c in enumerate(firing[idx]) if c <= n_steps)
        granted = order[:k]
        if len(granted) == k:
            out[idx] = any(c == granted[-1][0] for c, _ in order[k:])
    return out


def test_kth_grant_ties_equal_the_arbiter_by_hand():
    rng = np.random.default_rng(0)
    n_steps, k = 8, 3
    firing = rng.integers(1, n_steps + 2, (200, 7))        # n_steps + 1: never fired
    cyc = np.sort(firing, axis=-1)[..., :k]                  # the granted slots' cycles, in grant order
    want = _ties_reference(firing, k, n_steps)
    np.testing.assert_array_equal(kth_grant_ties(firing, cyc, n_steps), want)
    assert 0 < want.sum() < want.size                        # both cases occur


def test_newest_first_is_the_token_order_chip_fed_the_reversed_keys(hardware):
    # the macro is unchanged: writing the keys newest-first converts exactly what writing the
    # reversed sequence in token order converts (same columns, devices and comparator noise)
    q, k, v = _qkv(1)
    causal = np.tril(np.ones((24, 24), dtype=bool))
    _, newest = _run(hardware, q, k, v, causal, 7, key_order="newest-first")
    _, flipped = _run(hardware, q, k[..., ::-1, :], v[..., ::-1, :], causal[:, ::-1], 7)
    np.testing.assert_array_equal(newest.kept, flipped.kept[..., ::-1])
    np.testing.assert_array_equal(newest.alpha, flipped.alpha)
    assert newest.n_rows_kth_tie == flipped.n_rows_kth_tie
    _, token = _run(hardware, q, k, v, causal, 7)
    assert not np.array_equal(token.kept, newest.kept)      # another mapping: other columns convert the keys


def test_ties_go_to_the_oldest_key_in_token_order_and_to_the_newest_newest_first():
    # identical keys on a chip without mismatch or noise fire in the same cycle: the arbiter's
    # address order alone decides which k a causal row keeps
    quiet = TopkimaHardware(TopkimaMacro(load_calibration(), sigma_scale=0.0), chip_seed=0)
    rng = np.random.default_rng(2)
    t = 12
    key = rng.normal(0, 1, 16)
    k = np.broadcast_to(key, (1, 1, t, 16)).copy()
    q = np.linspace(0.2, 0.3, t)[None, None, :, None] * key    # every row's scores positive, all alike
    v = rng.normal(0, 1, (1, 1, t, 16))
    causal = np.tril(np.ones((t, t), dtype=bool))
    _, token = _run(quiet, q, k, v, causal, 0)
    _, newest = _run(quiet, q, k, v, causal, 0, key_order="newest-first")
    for r in range(t):
        n = min(5, r + 1)
        assert np.flatnonzero(token.kept[0, 0, r]).tolist() == list(range(n))
        assert np.flatnonzero(newest.kept[0, 0, r]).tolist() == list(range(r + 1 - n, r + 1))
    assert token.n_rows_kth_tie == newest.n_rows_kth_tie == t - 5   # rows with more than k visible keys


def test_newest_first_sequence_converts_alike_alone_and_padded():
    # each sequence's keys are reversed within its own length: padding does not move them
    quiet = TopkimaHardware(TopkimaMacro(load_calibration(), sigma_scale=0.0), chip_seed=3)
    q, k, v = _qkv(21, b=2, h=2, t=20)
    pad = np.ones((2, 1, 1, 20), dtype=bool)
    pad[0, ..., 9:] = False
    _, alone = _run(quiet, q[:1, :, :9], k[:1, :, :9], v[:1, :, :9], None, 0, key_order="newest-first")
    windows = list(zip(alone.extra["adc_range_per_head"], alone.extra["query_scale_per_head"]))
    _, both = _run(quiet, q, k, v, pad & pad.swapaxes(-1, -2), 1, key_order="newest-first", adc_range=windows)
    np.testing.assert_array_equal(both.kept[0, :, :9, :9], alone.kept[0])
    np.testing.assert_array_equal(both.alpha[0, :, :9], alone.alpha[0])


def test_exact_readback_keeps_the_chips_selection_and_scores_it_exactly(hardware):
    q, k, v = _qkv(3, b=2, h=2, t=16)
    causal = np.tril(np.ones((16, 16), dtype=bool))
    _, coded = _run(hardware, q, k, v, causal, 4)
    _, exact = _run(hardware, q, k, v, causal, 4, readback="exact")
    np.testing.assert_array_equal(exact.extra["granted"], coded.extra["granted"])
    # slow reference: the integer Q·K of each granted key from the codes, times the row's scale
    q_codes, k_codes, _, scale = quantized_scores(q, k, np.broadcast_to(causal, (2, 2, 16, 16)))
    granted, got = exact.extra["granted"], exact.extra["granted_scores"]
    for idx in np.ndindex(*granted.shape):
        b, h, r, slot = idx
        j = granted[idx]
        want = 0.0 if j < 0 else sum(int(q_codes[b, h, r, e]) * int(k_codes[b, h, j, e]) for e in range(16)) \
            * float(np.broadcast_to(scale, (2, 2, 16, 1))[b, h, r, 0])
        assert got[idx] == pytest.approx(want, rel=1e-12, abs=1e-12)
    # the ramp-code read-back differs from it by up to a window step (here, per-call windows)
    filled = granted >= 0
    assert np.any(coded.extra["granted_scores"][filled] != got[filled])


def test_bad_key_order_and_readback_are_named(hardware):
    q, k, v = _qkv(0)
    for kwargs, match in ((dict(key_order="oldest"), "key_order"), (dict(readback="adc"), "readback")):
        with pytest.raises(ValueError, match=match):
            topkima_attention(q, k, v, top_k=5, mode="topkima", macro=hardware, rng=np.random.default_rng(0),
                              **kwargs)


def test_kept_keys_below_the_kth_best_score_are_counted_as_by_hand(hardware):
    q, k, v = _qkv(6, b=1, h=2, t=20)
    causal = np.tril(np.ones((20, 20), dtype=bool))
    _, st = _run(hardware, q, k, v, causal, 2)
    _, _, scores, _ = quantized_scores(q, k, np.broadcast_to(causal, (1, 2, 20, 20)))
    kept_n, below = 0, 0
    for b, h, r in np.ndindex(1, 2, 20):
        visible = np.flatnonzero(causal[r])
        kth = sorted(scores[b, h, r, visible], reverse=True)[min(5, visible.size) - 1]
        for j in np.flatnonzero(st.kept[b, h, r]):
            kept_n += 1
            below += scores[b, h, r, j] < kth
    assert (st.n_kept, st.n_kept_below_kth) == (kept_n, below)
    assert 0 < below < kept_n


def test_ties_are_counted_per_array_when_fixed_quotas_split_a_row():
    # arrays 0–3 and 4–5 with quotas 3 + 2: column 3 (cycle 4) is held back by array 0's quota,
    # not by a tie; one k-counter over all six columns would call it a tie at the row's last grant
    from topkima.behavioral.key_order import kth_grant_ties_by_array
    granted = np.array([[1, 2, 3, 5, 6]])
    assert not kth_grant_ties_by_array(np.array([[1, 2, 3, 4, 5, 6]]), granted, 32, [(0, 4), (4, 6)], (3, 2))[0]
    # array 0's third grant (cycle 3) ties with column 3, which also fired in cycle 3
    assert kth_grant_ties_by_array(np.array([[1, 2, 3, 3, 5, 6]]), granted, 32, [(0, 4), (4, 6)], (3, 2))[0]
    # no quotas: one k-counter, the plain count
    assert kth_grant_ties_by_array(np.array([[1, 2, 3, 3, 5]]), np.array([[1, 2, 3]]), 32)[0]
