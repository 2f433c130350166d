"""k + m candidates from the ramp ADC, exact digital top-k among them (issue 14 item 6)."""
import warnings

import numpy as np
import pytest

from topkima.behavioral import AttentionRanges, TopkimaHardware, TopkimaMacro, topkima_attention
from topkima.behavioral.attention import quantized_scores
from topkima.behavioral.readback import best_of_candidates
from topkima.calibration import load_calibration

T, D = 24, 16
CAUSAL = np.tril(np.ones((T, T), dtype=bool))


@pytest.fixture(scope="module")
def hardware():
    return TopkimaHardware(TopkimaMacro(load_calibration()), chip_seed=5)


def _qkv(seed, b=1, h=2, t=T, d=D):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.6, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)))


def _run(hw, q, k, v, mask, seed, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # per-call ranges with a causal mask: fine for these comparisons
        return topkima_attention(q, k, v, top_k=5, mask=mask, mode="topkima", macro=hw, readback="exact",
                                 rng=np.random.default_rng(seed), return_stats=True, **kwargs)


def test_m0_is_the_plain_exact_readback(hardware):
    q, k, v = _qkv(1)
    out, st = _run(hardware, q, k, v, CAUSAL, 3)
    out_m0, st_m0 = _run(hardware, q, k, v, CAUSAL, 3, candidates=5)
    np.testing.assert_array_equal(out_m0, out)
    np.testing.assert_array_equal(st_m0.extra["granted"], st.extra["granted"])
    np.testing.assert_array_equal(st_m0.kept, st.kept)
    np.testing.assert_array_equal(st_m0.alpha, st.alpha)
    # nothing is dropped: the candidates are the kept keys
    np.testing.assert_array_equal(st_m0.extra["candidates"], st_m0.extra["granted"])


def _slow_best(units_row, candidates_row, k):
    """The digital top-k by hand: candidates in grant order, the k largest integer scores,
    ties to the earlier grant; the kept keys listed in grant order."""
    filled = [(slot, j) for slot, j in enumerate(candidates_row) if j >= 0]
    best = sorted(filled, key=lambda sj: (-units_row[sj[1]], sj[0]))[:k]
    return [j for _, j in sorted(best)]


def test_the_counter_only_stops_later_and_the_digital_side_keeps_the_best(hardware):
    q, k, v = _qkv(2, b=2)
    _, st5 = _run(hardware, q, k, v, CAUSAL, 4)
    _, st10 = _run(hardware, q, k, v, CAUSAL, 4, candidates=10)
    cand = st10.extra["candidates"]
    assert cand.shape[-1] == 10 and st10.extra["granted"].shape[-1] == 5
    # the same conversions (devices, comparator noise): the first 5 grants are the k = 5 chip's
    np.testing.assert_array_equal(cand[..., :5], st5.extra["granted"])
    assert np.all(st10.alpha >= st5.alpha) and np.any(st10.alpha > st5.alpha)
    _, _, units, _ = quantized_scores(q, k, np.broadcast_to(CAUSAL, (2, 2, T, T)))
    for idx in np.ndindex(*cand.shape[:-1]):
        want = _slow_best(units[idx], cand[idx].tolist(), 5)
        got = [j for j in st10.extra["granted"][idx].tolist() if j >= 0]
        assert got == want, idx
        assert sorted(np.flatnonzero(st10.kept[idx]).tolist()) == sorted(want)
    # more candidates never keep more keys outside the quantised top-5 here, and fewer overall
    assert st10.n_kept == st5.n_kept
    assert st10.n_kept_below_kth < st5.n_kept_below_kth


def test_a_row_over_two_arrays_keeps_k_layout_and_its_grants_among_the_candidates(hardware):
    # 300 keys, no mask: "3+2" over 256 + 44 columns for k = 5; with 9 candidates the keys stay
    # where k put them (the same columns, devices and noise), each array's counter only waits
    # longer (quotas 6 + 3), so the k = 5 chip's grants are among the candidates
    from topkima.behavioral.macro.arrays import Tiling, candidate_tiling
    assert candidate_tiling(300, 5, 9, "256x256", 256) == Tiling((256, 128), (6, 3))
    q, k, v = _qkv(6, h=1, t=300)
    _, st5 = _run(hardware, q, k, v, None, 8)
    _, st9 = _run(hardware, q, k, v, None, 8, candidates=9)
    cand, granted5 = st9.extra["candidates"], st5.extra["granted"]
    assert cand.shape[-1] == 9
    for idx in np.ndindex(*granted5.shape[:-1]):
        assert set(granted5[idx][granted5[idx] >= 0].tolist()) <= set(cand[idx].tolist()), idx
    # per array: at most its quota, and the second array's keys (≥ 256) do take candidates
    assert np.all((cand >= 256).sum(-1) <= 3) and np.any(cand >= 256)


def test_candidate_quotas_split_the_extra_grants_in_proportion():
    # against the rule written out: k's quotas, then each extra grant to the array with the largest
    # unmet proportional share (ties: the earlier array), capped at its keys
    from topkima.behavioral.macro.arrays import SUBTOPK_PRESETS, array_quotas, candidate_tiling
    assert candidate_tiling(300, 5, 6, "256x256", 256).quotas == (4, 2)
    assert candidate_tiling(600, 5, 7, "256x256", 256).quotas == (3, 3, 1)
    for n_keys in range(257, 1400, 37):
        for k in (2, 5, 8):
            layout = array_quotas(n_keys, k, "256x256", 256)
            if layout is None:
                continue
            for k_c in range(k + 1, k + 12):
                t = candidate_tiling(n_keys, k, k_c, "256x256", 256)
                k_quotas = SUBTOPK_PRESETS[layout][2] if isinstance(layout, str) else layout
                held = [max(0, min(s, n_keys - sum(t.sizes[:i]))) for i, s in enumerate(t.sizes)]
                extra = [q - kq for q, kq in zip(t.quotas, k_quotas)]
                assert sum(t.quotas) == min(k_c, n_keys) and all(0 <= x for x in extra)
                assert all(q <= h for q, h in zip(t.quotas, held))
                # no array holding more keys gets fewer extra grants, unless it is full
                for i in range(len(held)):
                    for j in range(len(held)):
                        if held[i] > held[j] and t.quotas[i] < held[i]:
                            assert extra[i] >= extra[j], (n_keys, k, k_c, t)


def test_ties_go_to_the_earlier_grant():
    units = np.array([[3.0, 7.0, 7.0, 1.0, 7.0, 5.0]])
    # candidates in grant order: keys 4, 1, 2 tie at 7; the two earlier grants (4, then 1) win
    granted = np.array([[0, 4, 5, 1, 2, -1]])
    np.testing.assert_array_equal(best_of_candidates(units, granted, 2), [[4, 1]])
    np.testing.assert_array_equal(best_of_candidates(units, granted, 4), [[4, 5, 1, 2]])
    # empty slots come last: fewer filled candidates than k leave empty slots
    np.testing.assert_array_equal(best_of_candidates(units, np.array([[3, -1, -1]]), 2), [[3, -1]])


def test_a_quiet_chip_with_every_key_a_candidate_keeps_the_quantised_topk():
    # no mismatch, no noise; ranges (window 1.0 / 0.0) fitted on these rows, so that the k best keys
    # of most rows lie inside their head's window (a key below it never fires: its row comes short
    # of k, a matter of the window, not of the selection); the counter waits for every key (m = T − k)
    quiet = TopkimaHardware(TopkimaMacro(load_calibration(), sigma_scale=0.0), chip_seed=0)
    q, k, v = _qkv(7, b=2)
    ranges = AttentionRanges.fit(q, k, v, top_k=5, mask=CAUSAL)
    kw = dict(top_k=5, mask=CAUSAL, mode="topkima", macro=quiet, readback="exact", return_stats=True, ranges=ranges)
    _, st = topkima_attention(q, k, v, rng=np.random.default_rng(0), candidates=T, **kw)
    _, st_m0 = topkima_attention(q, k, v, rng=np.random.default_rng(0), **kw)
    # the slow reference: numpy's argsort of each row's visible integer scores
    q_codes, k_codes = ranges.quantize(q, k, v, np.ones((2, 2, T), dtype=bool))[:2]
    units = np.einsum("bhtd,bhsd->bhts", q_codes.astype(np.int64), k_codes.astype(np.int64))
    n_rows, n_full = 0, 0
    for b, h, r in np.ndindex(2, 2, T):
        vis = np.flatnonzero(CAUSAL[r])
        kept = np.flatnonzero(st.kept[b, h, r])
        n = min(5, vis.size)
        if kept.size < n:       # short of k: a key of its top k lies below the window
            continue
        n_full += 1
        order = vis[np.argsort(-units[b, h, r, vis], kind="stable")]
        # ties aside: the kept scores are the k best scores, key for key where the k-th is not tied
        np.testing.assert_array_equal(np.sort(units[b, h, r, kept])[::-1], units[b, h, r, order[:n]])
        if vis.size == n or units[b, h, r, order[n - 1]] > units[b, h, r, order[n]]:   # no tie at the k-th
            assert sorted(kept.tolist()) == sorted(order[:n].tolist())
            n_rows += 1
    assert n_full >= 0.8 * 2 * 2 * T and n_rows > 60
    assert st.n_kept_below_kth == 0 and st_m0.n_kept_below_kth > 0     # the analog order alone misses some


@pytest.mark.parametrize("bad, match", [
    (dict(candidates=4), "integer ≥ top_k"),
    (dict(candidates=7.0), "integer ≥ top_k"),
    (dict(candidates=True), "integer ≥ top_k"),
    (dict(candidates="7"), "integer ≥ top_k"),
    (dict(candidates=7, readback="ramp-code"), "readback='exact'"),
    (dict(candidates=7, mode="topk"), "mode='topkima'"),
])
def test_bad_candidates_are_named(hardware, bad, match):
    q, k, v = _qkv(0)
    kwargs = dict(mode="topkima", readback="exact") | bad
    with pytest.raises(ValueError, match=match):
        topkima_attention(q, k, v, top_k=5, macro=hardware, rng=np.random.default_rng(0), **kwargs)
