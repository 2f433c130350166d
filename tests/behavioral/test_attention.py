"""topkima_attention: the exact mode, masks, determinism, the softmax core and input errors."""
import numpy as np
import pytest

from topkima.behavioral import SoftmaxCore, TopkimaHardware, TopkimaMacro, topkima_attention
from topkima.behavioral.attention import MODES, subtopk_plan
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def hardware():
    return TopkimaHardware(TopkimaMacro(load_calibration()), chip_seed=3)


def _qkv(seed, b=2, h=3, t=12, d=16):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.6, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)), rng.normal(0, 1, (b, h, t, d)))


def _slow_softmax_attention(q, k, v, visible):
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    for idx in np.ndindex(*q.shape[:-1]):
        *lead, t = idx
        s = [float(np.dot(q[idx], k[(*lead, j)])) for j in range(k.shape[-2]) if visible[(*lead, t, j)]]
        js = [j for j in range(k.shape[-2]) if visible[(*lead, t, j)]]
        if not js:
            continue
        m = max(s)
        w = [np.exp(x - m) for x in s]
        for wj, j in zip(w, js):
            out[idx] += wj / sum(w) * v[(*lead, j)]
    return out


def test_exact_mode_is_dense_softmax_attention():
    q, k, v = _qkv(0)
    mask = np.ones((2, 1, 1, 12), dtype=bool)
    mask[1, ..., 9:] = False                                # padding of the second sequence
    out = topkima_attention(q, k, v, top_k=5, mask=mask, mode="exact")
    ref = _slow_softmax_attention(q, k, v, np.broadcast_to(mask, (2, 3, 12, 12)))
    np.testing.assert_allclose(out, ref, atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore:the mask hides")   # a causal mask on per-call ranges, as intended here
def test_rows_longer_than_one_array_grant_only_keys_they_see(hardware):
    # 300 keys span two arrays; under a causal mask the arrays share one k-counter (a global top-k
    # over both arrays' firing cycles), whose disabled columns must never be granted
    q, k, v = _qkv(8, b=1, h=1, t=300, d=16)
    k[..., 150:, :] = 4.0 * np.sign(q.mean(axis=-2, keepdims=True))    # later keys would win if seen
    causal = np.tril(np.ones((300, 300), dtype=bool))
    _, st = topkima_attention(q, k, v, top_k=5, mask=causal, mode="topkima", macro=hardware,
                              rng=np.random.default_rng(1), return_stats=True)
    granted = st.extra["granted"]
    visible = np.broadcast_to(causal, st.kept.shape)
    assert (granted >= 0).sum() > 1000 and np.any(granted >= 256)
    assert np.all(np.take_along_axis(visible, np.maximum(granted, 0), axis=-1) | (granted < 0))


@pytest.mark.filterwarnings("ignore:the mask hides")   # a random mask: per-call ranges, as intended here
@pytest.mark.parametrize("mode", ["topk", "subtopk", "topkima"])
def test_masked_keys_are_never_kept(hardware, mode):
    q, k, v = _qkv(1)
    k[..., 8:, :] = 5.0 * np.sign(q.mean(axis=-2, keepdims=True))   # the masked keys would win
    pad = np.ones((2, 1, 1, 12), dtype=bool)
    pad[..., 8:] = False
    causal = np.tril(np.ones((12, 12), dtype=bool))
    # the chip's grants are taken as they come (its masked columns are disabled at the arbiter): in
    # either column order, every granted key is visible to its row
    for mask, key_order in ((pad, "token"), (pad & causal, "token"), (pad & causal, "newest-first")):
        if key_order != "token" and mode != "topkima":
            continue
        _, st = topkima_attention(q, k, v, top_k=3, mask=mask, mode=mode, macro=hardware,
                                  rng=np.random.default_rng(0), return_stats=True, key_order=key_order)
        visible = np.broadcast_to(mask, st.kept.shape)
        assert st.kept.any() and not np.any(st.kept & ~visible)
        real = visible.any(axis=-1)
        assert np.all(st.kept.sum(-1)[real] <= 3)
        if mode == "topkima":
            granted = st.extra["granted"]
            assert np.all(np.take_along_axis(visible, np.maximum(granted, 0), axis=-1) | (granted < 0))


def test_same_seed_same_result_and_topkima_stats(hardware):
    q, k, v = _qkv(2, t=40, d=32)
    runs = [topkima_attention(q, k, v, top_k=5, mode="topkima", macro=TopkimaHardware(hardware.macro, 3),
                              rng=np.random.default_rng(7), return_stats=True) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    st = runs[0][1]
    assert 0 < st.alpha.mean() <= 1 and st.energy_j > 0 and st.adc_range is not None
    exact = topkima_attention(q, k, v, top_k=5, mode="exact")
    rel = np.linalg.norm(runs[0][0] - exact) / np.linalg.norm(exact)
    assert rel < 0.6   # a sparse, quantised approximation of the same attention, not noise


def test_without_statistics_the_macro_skips_only_its_energy(hardware):
    # the energy pass runs for the statistics only: the attention output, and every conversion
    # result but the energy, are those of a call that takes the statistics
    q, k, v = _qkv(2, t=40, d=32)
    mask = np.tril(np.ones((40, 40), dtype=bool))
    kw = dict(top_k=5, mode="topkima", macro=TopkimaHardware(hardware.macro, 3))
    with_stats, st = topkima_attention(q, k, v, rng=np.random.default_rng(7), return_stats=True, **kw)
    plain = topkima_attention(q, k, v, rng=np.random.default_rng(7), **kw)
    np.testing.assert_array_equal(plain, with_stats)
    assert np.isfinite(st.energy_j) and st.energy_j > 0
    chip = hardware.macro.instance(np.random.default_rng(1))
    qc = np.random.default_rng(2).integers(-7, 8, (3, 40, chip.n_elements))
    kc = np.random.default_rng(3).integers(-3, 4, (3, chip.n_elements, 40))
    full = chip.topk(qc, kc, k=5, rng=np.random.default_rng(4), key_mask=mask)
    lean = chip.topk(qc, kc, k=5, rng=np.random.default_rng(4), key_mask=mask, energy=False)
    for name in ("indices", "codes", "cycles", "latency_s", "firing_cycle"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))
    assert np.all(np.isnan(lean.energy_j)) and np.all(np.isfinite(full.energy_j))


def test_topk_keeps_the_k_largest_quantised_scores():
    q, k, v = _qkv(3)
    _, st = topkima_attention(q, k, v, top_k=4, mode="topk", return_stats=True)
    assert np.all(st.kept.sum(-1) == 4)
    _, full = topkima_attention(q, k, v, top_k=12, mode="topk", return_stats=True)
    assert full.kept.all()


def test_subtopk_plan_follows_the_3_plus_2_pattern():
    assert subtopk_plan(384, 5) == ((256, 128), (3, 2))
    assert subtopk_plan(27, 5) == ((18, 9), (3, 2))
    assert subtopk_plan(27, 1) == ((27,), (1,))


def _slow_softmax_core(core, scores, kept):
    out = np.zeros(scores.shape)
    one = 1 << core.x_frac_bits
    for idx in np.ndindex(*scores.shape[:-1]):
        js = [j for j in range(scores.shape[-1]) if kept[idx][j]]
        if not js:
            continue
        m = max(scores[idx][j] for j in js)
        e = {}
        for j in js:
            x_fx = max(int(np.rint((scores[idx][j] - m) * np.log2(np.e) * one)), -core.max_shift * one)
            ip = x_fx // one
            frac = x_fx - ip * one
            mant = int(np.rint(2.0 ** (frac / one) * (1 << core.lut_bits)))
            e[j] = mant >> (-ip)
        total = sum(e.values())
        recip = (1 << core.recip_bits) // total
        a_max = (1 << core.a_bits) - 1
        for j in js:
            out[idx][j] = min(max(np.rint(e[j] * recip * a_max / (1 << core.recip_bits)), 0), a_max) / a_max
    return out


def test_softmax_core_matches_its_slow_reference_and_float_softmax():
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 2, (40, 9))
    kept = rng.random((40, 9)) < 0.7
    core = SoftmaxCore()
    fast = core(scores, kept)
    np.testing.assert_array_equal(fast, _slow_softmax_core(core, scores, kept))
    e = np.where(kept, np.exp(scores - scores.max(-1, keepdims=True)), 0)
    soft = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
    assert np.max(np.abs(fast - soft)) <= 1 / 31          # within one 5-bit step


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="fast"), "mode must be one of"),
    (dict(top_k=0), "top_k must be a positive integer"),
    (dict(mask=np.ones((12, 12))), "boolean"),
    (dict(mask=np.ones((5, 5), dtype=bool)), "does not broadcast"),
    (dict(mode="topkima"), "rng="),
])
def test_bad_inputs_get_clear_errors(kwargs, match):
    q, k, v = _qkv(5)
    args = dict(top_k=3, mode="topk") | kwargs
    with pytest.raises(ValueError, match=match):
        topkima_attention(q, k, v, **args)


def test_bad_shapes_and_values():
    q, k, v = _qkv(5)
    with pytest.raises(ValueError, match="do not form"):
        topkima_attention(q, k[..., :8], v, top_k=3, mode="topk")
    with pytest.raises(ValueError, match="finite"):
        topkima_attention(q * np.nan, k, v, top_k=3, mode="topk")
    with pytest.raises(ValueError, match=r"\(\.\.\., heads, T, d\)"):
        topkima_attention(q[0, 0], k[0, 0], v[0, 0], top_k=3, mode="topk")


def test_sram_av_model_matches_a_cell_by_cell_reference():
    from topkima.behavioral import SramAVModel
    model = SramAVModel(sigma_cell_rel=0.11, adc_bits=16)
    table = model.draw(np.random.default_rng(0), 8, 5)
    eps = np.random.default_rng(0).normal(0.0, 0.11, (8, 5, 4))   # the same draws, per bit cell
    rng = np.random.default_rng(1)
    a = rng.integers(0, 32, (3, 8)).astype(float)
    v = rng.integers(-15, 16, (8, 5))
    ref = np.zeros((3, 5))
    for r in range(3):
        for c in range(5):
            for j in range(8):
                cells = sum(2 ** b * ((abs(v[j, c]) >> b) & 1) * (1 + eps[j, c, b]) for b in range(4))
                ref[r, c] += a[r, j] * np.sign(v[j, c]) * cells
    out = model(a, v, table)
    full = np.abs(a @ v).max()                      # the ADC's full scale: the ideal outputs' largest
    np.testing.assert_allclose(out, np.clip(ref, -full, full), atol=full / (2 ** 15 - 1))  # one 16-bit step
    coarse = SramAVModel(sigma_cell_rel=0.0)(a, v, None)                # 5-bit ADC: 15 steps a side
    assert np.max(np.abs(coarse - a @ v)) <= full / 15 / 2 + 1e-9


def test_sparse_softmax_core_equals_the_dense_one():
    from topkima.behavioral.attention import _sparse_softmax
    rng = np.random.default_rng(6)
    scores = rng.normal(0, 3, (2, 3, 7, 11))
    kept = rng.random(scores.shape) < 0.3
    kept[0, 0, 0] = False                                   # a row with nothing kept
    core = SoftmaxCore()
    np.testing.assert_array_equal(_sparse_softmax(core, scores, kept), core(scores, kept))


def test_key_zero_stays_kept_when_fewer_than_k_keys_fire(hardware):
    # key 0 wins every row by far; with k larger than what fires, empty slots must not erase it
    rng = np.random.default_rng(11)
    q = rng.normal(0, 0.3, (1, 2, 6, 16))
    k = rng.normal(0, 0.3, (1, 2, 6, 16))
    k[..., 0, :] = 3.0 * np.sign(q.mean(axis=-2))
    _, st = topkima_attention(q, k, k, top_k=5, mode="topkima", macro=hardware, rng=np.random.default_rng(0),
                              return_stats=True)
    assert st.kept[..., 0].all()


def test_subtopk_blocks_follow_each_rows_own_length():
    # a 9-key sentence padded to 27 keys keeps 5 keys per row, as it does alone
    q, k, v = _qkv(12, b=1, h=2, t=27)
    pad = np.zeros((1, 1, 1, 27), dtype=bool)
    pad[..., :9] = True
    _, padded = topkima_attention(q, k, v, top_k=5, mask=pad & pad.swapaxes(-1, -2), mode="subtopk",
                                  return_stats=True)
    _, alone = topkima_attention(q[..., :9, :], k[..., :9, :], v[..., :9, :], top_k=5, mode="subtopk",
                                 return_stats=True)
    np.testing.assert_array_equal(padded.kept[..., :9, :9], alone.kept)
    assert np.all(alone.kept.sum(-1) == 5)
    # blocks of 6 and 3 keys with quotas 3 and 2 (SPEC §3's 3 + 2, scaled)
    assert np.all(alone.kept[..., :6].sum(-1) == 3) and np.all(alone.kept[..., 6:].sum(-1) == 2)


def test_a_sequence_converts_alike_alone_and_padded_in_a_batch():
    # padding keys are not written to the array and padding rows not applied: with the same
    # frozen windows and no noise (σ × 0), a short sentence keeps the same keys, the same
    # early stop and the same macro energy alone as padded beside a longer one
    quiet = TopkimaHardware(TopkimaMacro(load_calibration(), sigma_scale=0.0), chip_seed=3)
    q, k, v = _qkv(21, b=2, h=2, t=20)
    pad = np.ones((2, 1, 1, 20), dtype=bool)
    pad[0, ..., 9:] = False
    visible = pad & pad.swapaxes(-1, -2)
    _, alone = topkima_attention(q[:1, :, :9], k[:1, :, :9], v[:1, :, :9], top_k=5, mode="topkima",
                                 macro=quiet, rng=np.random.default_rng(0), return_stats=True)
    windows = list(zip(alone.extra["adc_range_per_head"], alone.extra["query_scale_per_head"]))
    _, both = topkima_attention(q, k, v, top_k=5, mask=visible, mode="topkima", macro=quiet,
                                rng=np.random.default_rng(1), return_stats=True, adc_range=windows)
    np.testing.assert_array_equal(both.kept[0, :, :9, :9], alone.kept[0])
    assert not both.kept[0, :, 9:].any() and not both.kept[0, :, :, 9:].any()
    np.testing.assert_array_equal(both.alpha[0, :, :9], alone.alpha[0])
    assert np.all(both.alpha[0, :, 9:] == 0)
    _, second = topkima_attention(q[1:], k[1:], v[1:], top_k=5, mode="topkima", macro=quiet,
                                  rng=np.random.default_rng(2), return_stats=True, adc_range=windows)
    np.testing.assert_allclose(both.energy_j, alone.energy_j + second.energy_j, rtol=1e-6)   # float32 MAC products round by batch shape


def test_hardware_takes_a_seed_sequence_and_scales_the_av_spread_with_sigma():
    cal = load_calibration()
    base = TopkimaHardware(TopkimaMacro(cal), chip_seed=0)
    seq = lambda: np.random.SeedSequence(5, spawn_key=(1, 2))  # noqa: E731
    wide = [TopkimaHardware(TopkimaMacro(cal, sigma_scale=2.0), chip_seed=seq()) for _ in range(2)]
    assert wide[0].av_model.sigma_cell_rel == pytest.approx(2 * base.av_model.sigma_cell_rel)
    np.testing.assert_array_equal(wide[0].av_err_table, wide[1].av_err_table)
    other = TopkimaHardware(TopkimaMacro(cal, sigma_scale=2.0), chip_seed=np.random.SeedSequence(5, spawn_key=(1, 3)))
    assert not np.array_equal(other.av_err_table, wide[0].av_err_table)


def test_a_row_of_257_keys_uses_two_arrays_with_quotas_3_and_2(hardware):
    # 257 keys leave one key for the paper's 128-column second array: split evenly instead
    q, k, v = _qkv(31, b=1, h=1, t=257, d=16)
    _, st = topkima_attention(q, k, v, top_k=5, mode="topkima", macro=hardware, rng=np.random.default_rng(0),
                              return_stats=True)
    kept = st.kept[0, 0]
    assert np.all(kept[:, :129].sum(-1) <= 3) and np.all(kept[:, 129:].sum(-1) <= 2)
    assert kept.sum(-1).max() == 5


def test_windows_of_all_heads_at_once_are_choose_adc_range_of_each_heads_rows():
    # the topkima path takes each real row's largest and k-th largest visible score for all
    # heads at once (choose_adc_range reads only those), and their quantiles per head
    from topkima.behavioral import choose_adc_range
    from topkima.behavioral.head_windows import head_windows as _head_windows
    rng = np.random.default_rng(8)
    scores = rng.integers(-900, 900, (2, 3, 9, 12)).astype(np.float32)   # integer MAC units
    causal = np.broadcast_to(np.tril(np.ones((9, 12), dtype=bool), k=2), scores.shape)
    per_head = causal & (rng.random((1, 3, 1, 12)) < 0.8)                # each head its own keys
    for visible in (causal, per_head):
        rows = visible.sum(-1) >= 5
        windows = _head_windows(scores, visible, rows, 5, 3)
        for h in range(3):
            full = np.where(visible, scores, -1e30)[:, h][rows[:, h]]
            assert windows[h] == choose_adc_range(full, 5)
    with pytest.raises(ValueError, match="bottom_quantile ≤ top_quantile"):
        _head_windows(scores, causal, causal.sum(-1) >= 5, 5, 3, top_quantile=0.1, bottom_quantile=0.9)


def test_softmax_core_short_rows_equal_the_same_rows_padded():
    # rows of ≤ 16 entries are reduced column by column, longer ones by numpy's row reduction
    rng = np.random.default_rng(9)
    scores = rng.normal(0, 3, (4, 6, 5))
    kept = rng.random(scores.shape) < 0.7
    kept[0, 0] = False
    pad = lambda x, fill: np.concatenate([x, np.full((4, 6, 15), fill)], axis=-1)  # noqa: E731
    core = SoftmaxCore()
    np.testing.assert_array_equal(core(pad(scores, 0.0), pad(kept, False))[..., :5], core(scores, kept))


def test_sram_av_model_rejects_v_codes_beyond_its_cells():
    from topkima.behavioral import SramAVModel
    model = SramAVModel(sigma_cell_rel=0.1)
    table = model.draw(np.random.default_rng(0), 4, 3)
    with pytest.raises(IndexError, match="V codes"):
        model(np.ones((2, 4)), np.full((4, 3), -16), table)


def _quantize_reference(x, max_code, valid=None, per_row=False):
    """The quantisation formula in numpy, written out (the kernel's reference)."""
    x64 = np.asarray(x, np.float64)
    ax = np.abs(x64)
    if per_row:
        m = ax.max(axis=-1, keepdims=True)
        if valid is not None:
            m = np.where(valid[..., None], m, 0.0)
    else:
        m = (ax if valid is None else np.where(valid[..., None], ax, 0.0)).max(axis=(-2, -1), keepdims=True)
    s = m / max_code
    s = np.where(s > 0, s, 1.0)
    return np.rint(np.clip(x64 / s, -max_code, max_code)).astype(np.int64), s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_row", [False, True])
def test_quantize_kernel_matches_the_numpy_formula(dtype, per_row):
    from topkima.behavioral.quantize import quantize_symmetric
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, 4, 9, 16)) * rng.uniform(0.1, 10, (3, 4, 1, 1))).astype(dtype)
    x[0, 0, 2] = 0.0                                 # an all-zero token
    x[1, 1] = 0.0                                    # an all-zero block: scale 1
    valid = rng.random((3, 4, 9)) < 0.8
    for v in (None, valid):
        codes, s = quantize_symmetric(x, 15, v, per_row=per_row)
        ref_codes, ref_s = _quantize_reference(x, 15, v, per_row=per_row)
        np.testing.assert_array_equal(codes, ref_codes)
        np.testing.assert_array_equal(s, ref_s)
        assert s.shape == ((3, 4, 9, 1) if per_row else (3, 4, 1, 1))
    # padding tokens do not set the block's scale: scaling them changes nothing else
    y = x.copy()
    y[~valid] *= 100
    if not per_row:
        np.testing.assert_array_equal(quantize_symmetric(y, 15, valid)[0][valid], quantize_symmetric(x, 15, valid)[0][valid])


@pytest.mark.parametrize("with_err", [False, True])
def test_sram_av_of_granted_keys_equals_the_dense_product(with_err):
    from topkima.behavioral import SramAVModel
    model = SramAVModel(sigma_cell_rel=0.1)
    rng = np.random.default_rng(12)
    n_seq, heads, t_q, t_k, d_v, slots = 2, 3, 7, 11, 5, 4
    table = model.draw(rng, 16, 8) if with_err else None
    v = rng.integers(-15, 16, (n_seq, heads, t_k, d_v))
    granted = np.full((n_seq, heads, t_q, slots), -1)
    a_slot = np.zeros(granted.shape)
    dense = np.zeros((n_seq, heads, t_q, t_k))
    for idx in np.ndindex(n_seq, heads, t_q):
        n = rng.integers(0, slots + 1)                      # some rows keep fewer keys (or none)
        keys = rng.choice(t_k, n, replace=False)
        granted[idx][:n] = keys
        a_slot[idx][:n] = rng.integers(0, 32, n)
        dense[idx][keys] = a_slot[idx][:n]
    got = model.of_granted(a_slot, granted, v, table)
    want = model(dense, v, table)
    if with_err:   # sums in another order: equal to float64 rounding (an ADC step is ≥ 1e-3 of full scale)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
    else:          # integer sums: exact
        np.testing.assert_array_equal(got, want)


def test_array_quotas_sum_to_k_and_give_the_published_tilings():
    from topkima.behavioral.macro.arrays import SUBTOPK_PRESETS, array_quotas
    assert array_quotas(200, 5, "256x256") is None                 # one array keeps k
    assert array_quotas(384, 5, "256x256") == "3+2"                # docs/spec.md: 256 + 128, 3 + 2
    assert array_quotas(257, 5, "256x256") == (3, 2)               # one key for a quota of 2: split evenly
    assert array_quotas(384, 5, "128x128") == "2+2+1"
    assert array_quotas(1024, 5, "256x256") == (2, 1, 1, 1)
    assert array_quotas(1024, 7, "256x256") == (2, 2, 2, 1)
    assert array_quotas(4096, 5, "256x256") is None                # 16 arrays > k: one shared k-counter
    for n in range(257, 1281, 37):
        for k in (2, 5, 8):
            plan = array_quotas(n, k, "256x256")
            quotas = SUBTOPK_PRESETS[plan][2] if isinstance(plan, str) else plan
            if quotas is not None:
                assert sum(quotas) == k and min(quotas) >= 1 and len(quotas) == -(-n // 256)


@pytest.mark.parametrize("n_keys", [1024, 4096])
def test_topkima_rows_of_many_keys_follow_the_array_quotas(n_keys):
    from topkima.behavioral import TopkimaHardware
    from topkima.behavioral.macro.arrays import array_quotas
    rng = np.random.default_rng(13)
    q = rng.standard_normal((1, 2, 6, 64))
    k = rng.standard_normal((1, 2, n_keys, 64))
    v = rng.standard_normal((1, 2, n_keys, 64))
    hw = TopkimaHardware(chip_seed=3)
    out, stats = topkima_attention(q, k, v, top_k=5, mode="topkima", macro=hw, rng=np.random.default_rng(1),
                                   return_stats=True)
    assert out.shape == (1, 2, 6, 64) and np.all(np.isfinite(out))
    kept = stats.kept.reshape(-1, n_keys)
    n_kept = kept.sum(axis=-1)
    # a row keeps k keys unless too few fire inside the ADC window (counted as short)
    assert n_kept.max() == 5 and np.sum(n_kept < 5) == stats.n_rows_short and stats.n_rows_short <= 3
    plan = array_quotas(n_keys, 5, "256x256")
    if plan is not None:    # fixed quotas over keys split evenly: no array keeps more than its quota
        edges = np.linspace(0, n_keys, len(plan) + 1).astype(int)
        per_array = np.add.reduceat(kept, edges[:-1], axis=-1)
        assert np.all(per_array <= np.asarray(plan))
        assert np.all(per_array[n_kept == 5] == np.asarray(plan))
    # A·V over more keys than one SRAM array: the cell errors of every array it spans, array 0 as drawn first
    table = hw.av_errors(n_keys, 64)
    assert table.shape[0] >= n_keys
    np.testing.assert_array_equal(table[:512, :256], hw.av_err_table)
    np.testing.assert_array_equal(TopkimaHardware(chip_seed=3).av_errors(n_keys, 64), table)


def test_sram_av_tiles_long_rows_over_arrays():
    from topkima.behavioral import SramAVModel
    rng = np.random.default_rng(14)
    a = rng.integers(0, 32, (2, 3, 10)).astype(float)
    v = rng.integers(-15, 16, (2, 10, 5))
    tiled = SramAVModel(sigma_cell_rel=0.0, keys_per_array=4, outputs_per_array=2)   # 5-bit ADCs
    # written out: each array (4 keys × 2 outputs) sums its own keys, its ADC rounds that partial
    # sum to ±15 steps of its own full scale, and the arrays' results add up
    want = np.zeros((2, 3, 5))
    for b in range(2):
        for j0 in range(0, 10, 4):
            for o0 in range(0, 5, 2):
                part = a[b, :, j0:j0 + 4] @ v[b, j0:j0 + 4, o0:o0 + 2]
                full = np.abs(part).max()
                lsb = full / 15 if full > 0 else 1.0
                want[b, :, o0:o0 + 2] += np.clip(np.rint(part / lsb), -15, 15) * lsb
    np.testing.assert_allclose(tiled(a, v, None), want, rtol=0, atol=1e-12)
    untiled = SramAVModel(sigma_cell_rel=0.0)(a, v, None)
    assert not np.allclose(untiled, want)          # the tiling is what the test sees
    # the granted-keys kernel tiles the same way, with cell errors
    granted = np.argsort(-a, axis=-1)[..., :4]
    dense = np.zeros_like(a)
    np.put_along_axis(dense, granted, np.take_along_axis(a, granted, -1), -1)
    coarse = SramAVModel(sigma_cell_rel=0.1, keys_per_array=4, outputs_per_array=2)
    errors = coarse.draw(rng, 12, 6)
    np.testing.assert_allclose(coarse.of_granted(np.take_along_axis(a, granted, -1), granted, v, errors),
                               coarse(dense, v, errors), rtol=0, atol=1e-9)


def test_top_k_beyond_the_keys_of_a_multi_array_row_keeps_them_all():
    from topkima.behavioral import TopkimaHardware
    rng = np.random.default_rng(15)
    q, k, v = rng.standard_normal((1, 1, 2, 8)), rng.standard_normal((1, 1, 280, 8)), rng.standard_normal((1, 1, 280, 8))
    out, st = topkima_attention(q, k, v, top_k=300, mode="topkima", macro=TopkimaHardware(chip_seed=0),
                                rng=np.random.default_rng(0), return_stats=True)
    assert out.shape == (1, 1, 2, 8) and np.all(np.isfinite(out))
    assert st.kept[..., :256].any() and st.kept[..., 256:].any()     # keys kept from both arrays


def test_empty_inputs_give_empty_outputs_and_bad_dtypes_are_refused():
    from topkima.behavioral import TopkimaHardware
    hw = TopkimaHardware(chip_seed=0)
    x = np.ones((1, 2, 4, 8))
    none = np.ones((1, 2, 0, 8))
    for mode in MODES:
        assert topkima_attention(none, x, x, top_k=3, mode=mode, macro=hw, rng=np.random.default_rng(0)).shape == (1, 2, 0, 8)
        out = topkima_attention(x, none, none, top_k=3, mode=mode, macro=hw, rng=np.random.default_rng(0))
        assert out.shape == (1, 2, 4, 8) and not out.any()
    with pytest.raises(ValueError, match="real numbers"):
        topkima_attention(x.astype(complex), x, x, top_k=3, mode="topk")
    with pytest.raises(ValueError, match="real numbers"):
        topkima_attention(x.astype(object), x, x, top_k=3, mode="topk")
    with pytest.raises(ValueError, match="overflow"):
        topkima_attention(x * 1e200, x * 1e200, x, top_k=3, mode="exact")
    with pytest.raises(ValueError, match="d ≥ 1"):
        topkima_attention(x[..., :0], x[..., :0], x, top_k=3, mode="exact")
    from topkima.behavioral.quantize import quantize_symmetric
    codes, scale = quantize_symmetric(np.zeros((2, 0, 4)), 7)
    assert codes.shape == (2, 0, 4) and scale.shape == (2, 1, 1)


def test_merged_macro_calls_stay_within_the_conversion_cap():
    """Every element of a merged call is padded to the call's most keys: the runs are cut so
    that the padded conversions stay under CALL_CONVERSIONS (a lone item may exceed it)."""
    from topkima.behavioral.attention import CALL_CONVERSIONS, _merged_chunks
    t_q = 40
    items = [(0, np.arange(3), 1, 256, 0)] + [(h, np.arange(30), 1, 5, h) for h in range(1, 60)]
    chunks = list(_merged_chunks(items, t_q))
    assert sum(len(c) for c in chunks) == len(items) and [it for c in chunks for it in c] == items
    for c in chunks:
        padded = sum(it[1].size for it in c) * t_q * max(it[3] for it in c)
        assert len(c) == 1 or padded <= CALL_CONVERSIONS


def test_query_scales_must_be_finite_and_positive():
    from topkima.behavioral.quantize import scaled_codes_int8
    codes = np.ones((2, 1, 3, 4), dtype=np.int64)
    for bad in (np.nan, np.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="query scales must be finite and positive"):
            scaled_codes_int8(codes, np.array([1.0, bad]), 31)
    np.testing.assert_array_equal(scaled_codes_int8(codes * 20, np.array([0.5, 2.0]), 31)[:, 0, 0, 0], [10, 31])


@pytest.mark.parametrize("core", [SoftmaxCore(), SoftmaxCore(x_frac_bits=4, lut_bits=6, max_shift=8, recip_bits=12,
                                                             a_bits=4)])
def test_softmax_core_codes_equal_the_numpy_definition(core):
    """The compiled A codes of the topkima path equal the numpy core's, rounded to codes: random
    scores over small and large spreads (the shift clamp), ties, empty rows, one kept slot."""
    rng = np.random.default_rng(8)
    scores = rng.normal(0, 1, (400, 5)) * rng.choice([0.1, 1.0, 10.0, 40.0], (400, 1))
    scores[:50] = np.round(scores[:50])            # ties
    kept = rng.random((400, 5)) < 0.8
    kept[50:60] = False                            # rows that keep nothing
    kept[60:70] = [True, False, False, False, False]
    codes = core.codes(scores.reshape(20, 20, 5), kept.reshape(20, 20, 5)).reshape(400, 5)
    reference = np.where(kept, np.rint(core(scores, kept) * ((1 << core.a_bits) - 1)), 0.0)
    np.testing.assert_array_equal(codes, reference)


def test_sram_av_of_granted_is_the_same_on_any_thread_count():
    from topkima.behavioral import SramAVModel
    from topkima.behavioral.macro import runtime
    model = SramAVModel(sigma_cell_rel=0.1)
    rng = np.random.default_rng(21)
    v = rng.integers(-15, 16, (3, 4, 20, 8))
    granted = np.where(rng.random((3, 4, 20, 5)) < 0.8, rng.integers(0, 20, (3, 4, 20, 5)), -1)
    a = np.where(granted >= 0, rng.integers(0, 32, granted.shape), 0).astype(float)
    table = model.draw(rng, 20, 8)
    before = runtime.threads()
    try:
        got = []
        for n in (1, 2, 3):
            runtime.set_threads(n)
            got.append(model.of_granted(a, granted, v, table))
    finally:
        runtime.set_threads(before)
    assert np.abs(got[0]).max() > 0
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0])


def assert_best_and_kth_on_threads(scores, visible, kk, want_first, want_kth, thread_counts):
    """``row_best_and_kth`` gives the wanted best and k-th scores on each thread count."""
    from topkima.behavioral.head_windows import row_best_and_kth
    from topkima.behavioral.macro import runtime
    before = runtime.threads()
    try:
        for n in thread_counts:
            runtime.set_threads(n)
            first, kth = row_best_and_kth(scores, visible, kk)
            np.testing.assert_array_equal(first, want_first)
            np.testing.assert_array_equal(kth, want_kth)
    finally:
        runtime.set_threads(before)


def test_row_best_and_kth_equal_a_sort_of_each_row_on_any_thread_count():
    rng = np.random.default_rng(22)
    # short rows, many ties and rows seeing fewer than k keys; long rows; a row count that is not a
    # multiple of the kernel's lanes
    for n_rows, n_keys, kk, levels in ((300, 14, 5, 6), (37, 300, 5, 400), (5, 9, 1, 6), (21, 40, 12, 30)):
        scores = rng.integers(-levels, levels + 1, (n_rows, n_keys)).astype(np.float32)
        visible = rng.random(scores.shape) < 0.5
        want_first, want_kth = np.full(n_rows, -np.inf), np.full(n_rows, -np.inf)
        for r in range(n_rows):
            row = np.sort(scores[r][visible[r]])[::-1]
            if row.size:
                want_first[r] = row[0]
            if row.size >= kk:
                want_kth[r] = row[kk - 1]
        assert np.isfinite(want_kth).any() and len(np.unique(want_kth)) > 1
        assert_best_and_kth_on_threads(scores, visible, kk, want_first, want_kth, (1, 2, 3))


def test_row_best_and_kth_never_list_nan_on_either_kernel():
    """Rows of 64 keys (the lanes kernel) and 65 (the one-by-one kernel), with NaN, ±inf and −0.0
    scores, hidden keys, rows seeing no key, and kk up to more than a row's keys: a NaN never enters
    the list; the k-th of a row with fewer than kk keys listed is −inf."""
    from topkima.behavioral.head_windows import SHORT_ROW_KEYS
    rng = np.random.default_rng(23)
    for n_keys in (SHORT_ROW_KEYS, SHORT_ROW_KEYS + 1, 3):
        for kk in (1, 5, 70):
            n_rows = 131
            scores = rng.integers(-4, 5, (n_rows, n_keys)).astype(np.float32)
            special = rng.random(scores.shape)
            scores[special < 0.1] = np.nan
            scores[(special >= 0.1) & (special < 0.15)] = np.inf
            scores[(special >= 0.15) & (special < 0.2)] = -np.inf
            scores[(special >= 0.2) & (special < 0.25)] = -0.0
            visible = rng.random(scores.shape) < 0.7
            visible[:3] = False                                     # rows that see no key
            want_first, want_kth = np.full(n_rows, -np.inf), np.full(n_rows, -np.inf)
            for r in range(n_rows):
                seen = scores[r][visible[r]]
                listed = np.sort(seen[~np.isnan(seen)])[::-1]
                listed = np.concatenate([listed, np.full(kk, -np.inf)])
                if seen.size:
                    want_first[r] = listed[0]
                if seen.size >= kk:
                    want_kth[r] = listed[kk - 1]
            assert_best_and_kth_on_threads(scores, visible, kk, want_first, want_kth, (1, 3))


def test_energy_flag_must_be_a_bool(hardware):
    chip = hardware.macro.nominal()
    q = np.ones((2, chip.n_elements), dtype=np.int64)
    k = np.ones((chip.n_elements, 8), dtype=np.int64)
    with pytest.raises(TypeError, match="energy must be True or False"):
        chip.topk(q, k, k=2, energy=0)
