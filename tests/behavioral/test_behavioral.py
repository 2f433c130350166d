"""The behavioural macro: sub-top-k, batching, determinism, modes and input errors."""
import numpy as np
import pytest

from topkima.behavioral import AdcRange, TopkimaMacro, choose_adc_range, subtopk_indices
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


@pytest.fixture(scope="module")
def macro(cal):
    return TopkimaMacro(cal)


def test_subtopk_worked_example_digital_reference():
    scores = np.arange(1, 385)
    picked = scores[subtopk_indices(scores, (128, 128, 128), (2, 2, 1))]
    assert [set(picked[:2]), set(picked[2:4]), set(picked[4:])] == [{127, 128}, {255, 256}, {384}]
    assert set(scores[np.argsort(-scores)[:5]]) == {380, 381, 382, 383, 384}


def _block_scores_on_ternary_keys(values):
    """q and ternary keys whose score for key c is values[c] (1…128): r + 31·m, r < 31 in binary."""
    q = np.array([1, 2, 4, 8, 16, 31, 31, 31, 31])
    keys = np.zeros((q.size, len(values)), dtype=int)
    for c, v in enumerate(values):
        m, r = divmod(int(v), 31)
        keys[:5, c] = [(r >> b) & 1 for b in range(5)]
        keys[5:5 + m, c] = 1
    assert np.array_equal(q @ keys, values)
    return q, keys


def test_subtopk_worked_example_through_the_macro(cal):
    # SPEC §3 on 128 x 128 arrays, quotas 2 + 2 + 1: within each 128-key block the scores rank
    # exactly as in [1 … 384]; the window (top 128, 1-unit LSB) resolves every block's top.
    scores = np.arange(1, 385)
    local = (scores - 1) % 128 + 1
    q, keys = _block_scores_on_ternary_keys(local)
    chip = TopkimaMacro(cal, array="128x128", adc_range=AdcRange(32, 4, 1)).ideal()
    res = chip.topk(q, keys, k=5, quotas="2+2+1")
    picked = scores[res.indices]
    assert [set(picked[:2]), set(picked[2:4]), set(picked[4:])] == [{127, 128}, {255, 256}, {384}]
    assert res.cycles == 2  # each array stops once its quota fired: 128 in cycle 1, 127 in cycle 2


def test_ideal_macro_is_the_quantised_topk(macro):
    rng = np.random.default_rng(3)
    q = rng.integers(-6, 7, (200, 64))
    k = rng.integers(-3, 4, (64, 256))
    res = macro.ideal().topk(q, k, k=5)
    s = q @ k
    top, lsb = macro.adc_range.top_units, macro.adc_range.lsb_units
    # ideal ADC: fires at the first cycle j with s > top − j·LSB
    cycle = np.clip(np.ceil((top - s) / lsb + 1e-9).astype(int), 1, 33)
    cycle = np.where(s > top - lsb * 32, np.maximum(cycle, 1), 33)
    np.testing.assert_array_equal(res.firing_cycle, cycle)


def test_batches_over_leading_dimensions_without_changing_results(macro):
    rng = np.random.default_rng(5)
    q = rng.integers(-8, 9, (2, 3, 7, 32))
    k = rng.integers(-4, 5, (32, 40))
    chip = macro.nominal()
    batched = chip.topk(q, k, k=4)
    flat = chip.topk(q.reshape(-1, 32), k, k=4)
    np.testing.assert_array_equal(batched.indices.reshape(-1, 4), flat.indices)
    np.testing.assert_array_equal(batched.cycles.reshape(-1), flat.cycles)
    assert batched.energy_j.shape == (2, 3, 7) and batched.latency_s.shape == (2, 3, 7)


def test_same_seed_same_chip_same_result(macro):
    rng = np.random.default_rng(8)
    q = rng.integers(-8, 9, (50, 64))
    k = rng.integers(-4, 5, (64, 300))
    runs = []
    for _ in range(2):
        chip = macro.instance(np.random.default_rng(42))
        runs.append(chip.topk(q, k, k=5, rng=np.random.default_rng(7)))
    np.testing.assert_array_equal(runs[0].indices, runs[1].indices)
    np.testing.assert_array_equal(runs[0].codes, runs[1].codes)
    other = macro.instance(np.random.default_rng(43)).topk(q, k, k=5, rng=np.random.default_rng(7))
    assert not np.array_equal(other.firing_cycle, runs[0].firing_cycle)


def test_early_stop_saves_cycles_and_energy_against_the_conventional_mode(macro):
    rng = np.random.default_rng(11)
    q = rng.integers(-8, 9, (64, 64)) * (rng.random((64, 64)) < 0.5)
    k = rng.integers(-4, 5, (64, 256))
    chip = macro.instance(np.random.default_rng(1))
    top = chip.topk(q, k, k=5, rng=np.random.default_rng(2))
    conv = chip.topk(q, k, k=5, rng=np.random.default_rng(2), mode="conventional")
    assert np.all(conv.cycles == 32) and conv.indices.shape == (64, 256)
    assert np.all(top.cycles <= 32) and top.alpha.mean() < 1
    assert np.all(top.energy_j < conv.energy_j) and np.all(top.latency_s <= conv.latency_s)
    assert np.all(top.energy_j > 0)


def test_choose_adc_range_places_the_window_on_the_scores():
    rng = np.random.default_rng(2)
    scores = rng.normal(0, 30, (100, 384))
    window, scale = choose_adc_range(scores, k=5)
    assert scale == 1.0
    ordered = -np.sort(-scores, axis=1)
    bottom = window.top_units - 32 * window.lsb_units
    assert abs(window.top_units - np.quantile(ordered[:, 0], 0.75)) <= 6   # the nearest n_cal × t_cal
    assert np.mean(ordered[:, 4] > bottom) >= 0.9                         # k keys fire in ≥ 90 % of rows
    big, scale = choose_adc_range(scores * 20, k=5)
    assert scale < 1 and big.top_units <= 192 and big.lsb_units <= 4
    assert np.mean(ordered[:, 4] * 20 * scale > big.top_units - 32 * big.lsb_units) >= 0.85


@pytest.mark.parametrize("call, match", [
    (lambda c, q, k: c.topk(q, k, k=0), "positive integer"),
    (lambda c, q, k: c.topk(q, k, k=41), "larger than the number of keys"),
    (lambda c, q, k: c.topk(q[:, :10], k, k=3), "disagree on d"),
    (lambda c, q, k: c.topk(q.astype(float) * np.nan, k, k=3), "NaN"),
    (lambda c, q, k: c.topk(q + 40, k, k=3), "q_codes must lie in"),
    (lambda c, q, k: c.topk(q, k * 3, k=3), "k_levels must lie in"),
    (lambda c, q, k: c.topk(q, k, k=5, quotas=(3, 3)), "sum to k"),
    (lambda c, q, k: c.topk(q, k, k=5, quotas="9+9"), "unknown sub-top-k preset"),
    (lambda c, q, k: c.topk(q, k, k=5, quotas="2+2+1"), "128x128"),
    (lambda c, q, k: c.topk(q.astype(float) + 0.5, k, k=3), "integers"),
])
def test_bad_inputs_get_clear_errors(macro, call, match):
    rng = np.random.default_rng(0)
    q = rng.integers(-5, 6, (4, 20))
    k = rng.integers(-3, 4, (20, 40))
    with pytest.raises(ValueError, match=match):
        call(macro.nominal(), q, k)


def test_noisy_instance_needs_a_generator_and_arrays_are_checked(macro, cal):
    with pytest.raises(ValueError, match="rng="):
        macro.instance(np.random.default_rng(0)).topk(np.ones((1, 4), int), np.ones((4, 8), int), k=2)
    with pytest.raises(ValueError, match="unknown array"):
        TopkimaMacro(cal, array="64x64")
    with pytest.raises(ValueError, match="t_ramp_units"):
        AdcRange(32, 4, 5)


def test_narrow_integer_dtypes_cannot_slip_past_the_range_check(macro):
    q = np.zeros((1, 16), np.int8)
    q[0, 0] = -128
    with pytest.raises(ValueError, match="q_codes must lie in"):
        macro.ideal().topk(q, np.ones((16, 8), np.int8), k=2)


def test_select_topk_runs_the_full_ramp_when_fewer_keys_than_k():
    from topkima.behavioral import select_topk
    idx, _, stop = select_topk(np.array([1, 2]), 3, 32)
    assert idx.tolist() == [0, 1, -1] and int(stop) == 32


def test_sub_topk_energy_counts_each_arrays_own_quota(macro):
    # each array's arbiter grants its own quota, not k: the split call costs what the two arrays
    # cost converting their own keys with their own quotas (the nominal chip's arrays are alike)
    rng = np.random.default_rng(4)
    q = rng.integers(-6, 7, (3, 32))
    k = rng.integers(-3, 4, (32, 384))
    chip = macro.nominal()
    split = chip.topk(q, k, k=5, quotas=(3, 2))
    first, second = chip.topk(q, k[:, :192], k=3), chip.topk(q, k[:, 192:], k=2)
    np.testing.assert_allclose(split.energy_j, first.energy_j + second.energy_j, rtol=1e-12)
    np.testing.assert_array_equal(split.cycles, np.maximum(first.cycles, second.cycles))
    as_global = chip.topk(q, k[:, :192], k=5)
    assert np.all(as_global.energy_j != first.energy_j)   # the quota is what changed


def test_quota_tuples_spread_uneven_key_counts(macro):
    rng = np.random.default_rng(6)
    q = rng.integers(-6, 7, (2, 16))
    res = macro.nominal().topk(q, rng.integers(-3, 4, (16, 4)), k=3, quotas=(1, 1, 1))
    assert res.indices.shape == (2, 3)
    assert set(res.indices[0][res.indices[0] >= 0]) <= {0, 1, 2, 3}


def test_batched_keys_equal_one_call_per_key_set(macro):
    # one key set per (batch, head): the batched call equals separate calls (the chip's devices
    # without comparator noise, whose draws follow each element's place in the batch)
    rng = np.random.default_rng(21)
    q = rng.integers(-12, 13, (2, 3, 5, 16))           # (batch, heads, rows, d)
    kl = rng.integers(-4, 5, (2, 3, 16, 40))           # (batch, heads, d, keys)
    chip = macro.instance(np.random.default_rng(4)).without_noise()
    batched = chip.topk(q, kl, k=4)
    for b in range(2):
        for hd in range(3):
            one = chip.topk(q[b, hd], kl[b, hd], k=4)
            for name in ("indices", "cycles", "energy_j", "firing_cycle"):
                np.testing.assert_array_equal(getattr(batched, name)[b, hd], getattr(one, name))


def test_a_ragged_batch_equals_each_key_set_converted_alone(macro):
    # sequences of different lengths padded into one call: each converts only its own rows and
    # key columns, so the call equals one call per sequence on its own rows × keys
    rng = np.random.default_rng(31)
    lengths = [(5, 40), (3, 23), (7, 35), (0, 0), (6, 20)]     # (rows, keys) of each sequence
    q = rng.integers(-12, 13, (len(lengths), 7, 16))
    kl = rng.integers(-4, 5, (len(lengths), 16, 40))
    mask = np.zeros((len(lengths), 7, 40), dtype=bool)
    for b, (r, c) in enumerate(lengths):
        mask[b, :r, :c] = True
    mask[2, :, 3] = False                              # a masked key inside a sequence
    mask[4, 1] = False                                 # a padding row inside a sequence
    chip = macro.instance(np.random.default_rng(4)).without_noise()
    batched = chip.topk(q, kl, k=5, key_mask=mask)
    assert np.all(batched.indices[3] == -1) and np.all(batched.energy_j[3] == 0)
    for b, (r, c) in enumerate(lengths):
        if r == 0:
            continue
        one = chip.topk(q[b, :r], kl[b, :, :c], k=5, key_mask=mask[b, :r, :c])
        np.testing.assert_array_equal(batched.firing_cycle[b, :r, :c], one.firing_cycle)
        np.testing.assert_array_equal(batched.indices[b, :r], one.indices)
        np.testing.assert_array_equal(batched.cycles[b, :r], one.cycles)
        np.testing.assert_array_equal(batched.energy_j[b, :r], one.energy_j)
        assert np.all(batched.firing_cycle[b, r:] == 33) and np.all(batched.energy_j[b, r:] == 0)
    assert batched.energy_j[4, 1] == 0 and np.all(batched.indices[4, 1] == -1)   # the padding row
    # with noise, the padding of a batch does not change what a sequence draws
    noisy = macro.instance(np.random.default_rng(4))
    wide = noisy.topk(q, kl, k=5, key_mask=mask, rng=np.random.default_rng(2))
    more_keys = np.concatenate([kl, np.zeros((5, 16, 9), kl.dtype)], axis=2)   # 9 padding keys, masked off
    more_mask = np.concatenate([mask, np.zeros((5, 7, 9), bool)], axis=2)
    padded_keys = noisy.topk(q, more_keys, k=5, key_mask=more_mask, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(padded_keys.firing_cycle[..., :40], wide.firing_cycle)
    padded = noisy.topk(np.concatenate([q, np.zeros((5, 3, 16), q.dtype)], axis=1), kl, k=5,
                        key_mask=np.concatenate([mask, np.zeros((5, 3, 40), bool)], axis=1), rng=np.random.default_rng(2))
    np.testing.assert_array_equal(padded.firing_cycle[:, :7], wide.firing_cycle)


def test_masked_keys_are_never_selected(macro):
    rng = np.random.default_rng(8)
    q = rng.integers(-12, 13, (64, 16))
    kl = rng.integers(-4, 5, (16, 30))
    kl[:, :10] = 4 * np.sign(q[0])[:, None]            # the best keys for row 0 ...
    mask = np.ones((64, 30), dtype=bool)
    mask[:, :10] = False                                # ... are padding
    res = macro.instance(np.random.default_rng(1)).topk(q, kl, k=5, rng=np.random.default_rng(2), key_mask=mask)
    chosen = res.indices[res.indices >= 0]
    assert chosen.size > 0 and np.all(chosen >= 10)
    # causal: row r may only see keys c ≤ r
    causal = np.tril(np.ones((30, 30), dtype=bool))
    res = macro.ideal().topk(q[:30], kl, k=5, key_mask=causal)
    rows, slots = np.nonzero(res.indices >= 0)
    assert np.all(res.indices[rows, slots] <= rows)
    assert np.all((res.indices[:3] >= 0).sum(axis=1) <= np.arange(1, 4))  # fewer than k keys: −1 slots
    with pytest.raises(ValueError, match="key_mask"):
        macro.ideal().topk(q, kl, k=5, key_mask=mask[:, :7])
    with pytest.raises(ValueError, match="boolean"):
        macro.ideal().topk(q, kl, k=5, key_mask=mask.astype(int))


def test_insitu_correction_fits_its_spice_runs_and_is_independent_of_the_golden_set(cal, macro):
    ins = macro.insitu
    assert ins.rms_residual_v < 0.5e-3                       # what the 5-term fit leaves, per bitline
    assert 100e-15 < ins.e_per_decision_j(0.35) < 160e-15    # the comparator's own 128 fJ at 10 mV
    import json
    from pathlib import Path
    golden = json.loads((Path(__file__).parents[1] / "golden" / "column_conversions.json").read_text())
    golden_inputs = {tuple(g["inputs"]) for g in golden["groups"]}
    assert not golden_inputs & {tuple(r["inputs"]) for r in cal.column["insitu_conversions"]["runs"]}


def test_a_corrupt_insitu_run_is_refused_by_name(cal):
    import copy
    from topkima.calibration import ArtefactError, Calibration
    data = copy.deepcopy(cal.data)
    data["column"]["insitu_conversions"]["runs"][1]["v_rbl_l_at_sa_clk_v"] = [0.4] * 5
    with pytest.raises(ArtefactError, match=r"insitu_conversions\.runs\[1\]\.v_rbl_l_at_sa_clk_v"):
        TopkimaMacro(Calibration(data))


def test_sigma_scale_zero_is_the_nominal_chip_and_scales_the_spreads(cal, macro):
    rng = np.random.default_rng(3)
    q = rng.integers(-15, 16, (20, 64))
    k = rng.integers(-7, 8, (64, 256))
    quiet = TopkimaMacro(cal, sigma_scale=0.0)
    chip = quiet.instance(np.random.default_rng(1)).topk(q, k, k=5, rng=np.random.default_rng(2), mode="conventional")
    nominal = macro.nominal().topk(q, k, k=5, mode="conventional")
    np.testing.assert_array_equal(chip.firing_cycle, nominal.firing_cycle)
    g = np.random.default_rng(5)
    base = macro.draw_tile(np.random.default_rng(5), 256, 192)
    double = TopkimaMacro(cal, sigma_scale=2.0).draw_tile(g, 256, 192)
    np.testing.assert_allclose(double.mac_dvt_v, 2 * base.mac_dvt_v)
    np.testing.assert_allclose(double.sa_offset_v - quiet.draw_tile(np.random.default_rng(5), 256, 192).sa_offset_v,
                               2 * (base.sa_offset_v - quiet.draw_tile(np.random.default_rng(5), 256, 192).sa_offset_v))
    with pytest.raises(ValueError, match="sigma_scale"):
        TopkimaMacro(cal, sigma_scale=-1)


def test_a_chip_under_another_window_keeps_its_devices(cal):
    # with_adc_range + instance_like share what the window does not change; the chip is the
    # one the same seed draws under that window
    base = TopkimaMacro(cal, sigma_scale=1.3)
    first = base.with_adc_range(AdcRange(20, 4, 3)).instance(np.random.default_rng(9))
    window = AdcRange(32, 3, 2)
    drawn = TopkimaMacro(cal, adc_range=window, sigma_scale=1.3).instance(np.random.default_rng(9))
    shared = base.with_adc_range(window).instance_like(first)
    rng = np.random.default_rng(1)
    q, kl = rng.integers(-20, 21, (4, 30, 32)), rng.integers(-7, 8, (4, 32, 40))
    a = drawn.topk(q, kl, k=5, rng=np.random.default_rng(3))
    b = shared.topk(q, kl, k=5, rng=np.random.default_rng(3))
    for name in ("indices", "firing_cycle", "cycles", "energy_j"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert shared.params.t_ramp_units == 2 and first.params.t_ramp_units == 3
    with pytest.raises(ValueError, match="same array"):
        TopkimaMacro(cal, array="128x128").instance_like(first)
