"""The A·V ADC's full-scale policy and bit count (issue 14 item 6): the frozen full scale against
numpy on the calibration outputs, clipping at the ADC's ends by hand, the chip's A·V path against
`topk` mode's digital A·V, causality, bad values."""
import numpy as np
import pytest

from topkima.behavioral import AttentionRanges, SramAVModel, TopkimaHardware, TopkimaMacro, topkima_attention
from topkima.calibration import load_calibration

HEADS, T, D = 2, 40, 16
CAUSAL = np.tril(np.ones((T, T), dtype=bool))


def _tensors(seed, b=2):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, HEADS, T, D)) / np.sqrt(D)
    k = rng.standard_normal((b, HEADS, T, D)) * rng.uniform(0.2, 3.0, D)
    v = rng.standard_normal((b, HEADS, T, D))
    return q, k, v


def _ideal_outputs(ranges, q, k, v, mask):
    """The calibration rows' ideal A·V outputs in code units (A code × V code), taken from `topk`
    mode's digital A·V (its output is that sum × V scale / 31), per head: (heads, rows, outputs)."""
    out = topkima_attention(q, k, v, top_k=ranges.top_k, mask=mask, mode="topk", ranges=ranges)
    codes = out * 31 / ranges.v_scale[None]     # (b, heads, T, D) / (1, heads, 1, 1)
    return np.moveaxis(codes, 1, 0).reshape(HEADS, -1, D)


@pytest.mark.parametrize("quantile", [0.999, 0.99, 0.9])
def test_a_quantile_full_scale_is_numpys_quantile_of_the_calibration_outputs(quantile):
    q, k, v = _tensors(1)
    by_max = AttentionRanges.fit(q, k, v, top_k=5, mask=CAUSAL)
    by_q = AttentionRanges.fit(q, k, v, top_k=5, mask=CAUSAL, av_full_scale=quantile)
    for name in ("k_scale", "v_scale"):        # the policy changes the A·V full scale only
        np.testing.assert_array_equal(getattr(by_q, name), getattr(by_max, name))
    ideal = np.abs(_ideal_outputs(by_max, q, k, v, CAUSAL))
    np.testing.assert_allclose(by_max.av_full_scale, ideal.reshape(HEADS, -1).max(axis=1), rtol=1e-12)
    expected = [np.quantile(ideal[h].reshape(-1), quantile) for h in range(HEADS)]   # every row sees a key
    np.testing.assert_allclose(by_q.av_full_scale, expected, rtol=1e-12)
    assert np.all(by_q.av_full_scale < by_max.av_full_scale)
    # stored and read back as plain numbers
    np.testing.assert_array_equal(AttentionRanges.from_json(by_q.to_json()).av_full_scale, by_q.av_full_scale)


def test_rows_without_keys_do_not_enter_the_quantile():
    q, k, v = _tensors(2, b=1)
    mask = CAUSAL.copy()
    mask[:20] = False                          # the first 20 rows see no key (padding): their output is 0
    r = AttentionRanges.fit(q, k, v, top_k=5, mask=mask, av_full_scale=0.5)
    ideal = np.abs(_ideal_outputs(AttentionRanges.fit(q, k, v, top_k=5, mask=mask), q, k, v, mask))
    real = ideal.reshape(HEADS, T, D)[:, 20:]
    np.testing.assert_allclose(r.av_full_scale, [np.median(real[h]) for h in range(HEADS)], rtol=1e-12)


@pytest.mark.parametrize("bits", [5, 3])
def test_the_adc_clips_at_its_end_codes_as_by_hand(bits):
    rng = np.random.default_rng(3)
    a_codes = rng.integers(0, 32, (3, 6, 12)).astype(float)
    v_codes = rng.integers(-15, 16, (3, 12, 8))
    full = np.array([40.0, 200.0, 1e4])        # the first clips often, the last hardly resolves
    model = SramAVModel(sigma_cell_rel=0.0, adc_bits=bits)
    half = 2 ** (bits - 1) - 1
    by_hand = np.empty((3, 6, 8))
    for b, r, o in np.ndindex(3, 6, 8):
        ideal = sum(a_codes[b, r, j] * v_codes[b, j, o] for j in range(12))
        lsb = full[b] / half
        by_hand[b, r, o] = min(max(round(ideal / lsb), -half), half) * lsb
    np.testing.assert_allclose(model(a_codes, v_codes, None, full), by_hand, rtol=1e-12)
    granted = np.broadcast_to(np.arange(12), a_codes.shape)
    np.testing.assert_allclose(model.of_granted(a_codes, granted, v_codes, None, full), by_hand, rtol=1e-12)
    assert np.any(np.abs(by_hand[0]) == full[0])  # some outputs sit at the end code


def test_a_quiet_chip_with_a_fine_av_adc_gives_topk_modes_output():
    """The softmax core and A·V are the same in both modes: with every key a candidate (the exact
    top-k kept), exact cells and a 16-bit A·V ADC the chip's output is `topk` mode's, to the
    ADC's step; with the paper's 5-bit ADC it is not."""
    q, k, v = _tensors(4)
    ranges = AttentionRanges.fit(q, k, v, top_k=5, mask=CAUSAL)
    reference, st_topk = topkima_attention(q, k, v, top_k=5, mask=CAUSAL, mode="topk", ranges=ranges,
                                           return_stats=True)
    out = {}
    for bits in (16, 5):
        quiet = TopkimaHardware(TopkimaMacro(load_calibration(), sigma_scale=0.0), chip_seed=0, av_adc_bits=bits)
        out[bits], st = topkima_attention(q, k, v, top_k=5, mask=CAUSAL, mode="topkima", macro=quiet, ranges=ranges,
                                          readback="exact", candidates=T, rng=np.random.default_rng(0),
                                          return_stats=True)
    # rows that keep the same keys in both modes (not so: rows short of k, below the window, and
    # ties at the k-th score, which the two modes break by different rules)
    same = np.all(st.kept == st_topk.kept, axis=-1)
    assert same.mean() > 0.8
    # one 16-bit step of each head's full scale, in output units
    step = (ranges.av_full_scale / (2 ** 15 - 1))[None, :, None, None] * ranges.v_scale[None] / 31
    err16 = np.abs(out[16] - reference)[same]
    assert np.all(err16 <= np.broadcast_to(step / 2 + 1e-12, out[16].shape)[same])
    step5 = step * (2 ** 15 - 1) / 15
    assert np.abs(out[5] - reference)[same].max() > np.broadcast_to(step5, out[5].shape)[same].min() / 4


def test_frozen_quantile_ranges_keep_rows_blind_to_the_future():
    ranges = AttentionRanges.fit(*_tensors(5, b=1), top_k=5, mask=CAUSAL, av_full_scale=0.99)
    hardware = TopkimaHardware(chip_seed=2, av_adc_bits=5)
    q, k, v = _tensors(6, b=1)
    k2, v2 = k.copy(), v.copy()
    rng = np.random.default_rng(7)
    k2[..., 30:, :] = rng.standard_normal(k2[..., 30:, :].shape) * 10
    v2[..., 30:, :] = rng.standard_normal(v2[..., 30:, :].shape) * 10
    for kwargs in (dict(), dict(readback="exact", candidates=10)):
        run = lambda kk, vv: topkima_attention(q, kk, vv, top_k=5, mask=CAUSAL, mode="topkima",  # noqa: E731
                                               macro=hardware, rng=np.random.default_rng(4), ranges=ranges, **kwargs)
        before, after = run(k, v), run(k2, v2)
        np.testing.assert_array_equal(before[..., :30, :], after[..., :30, :])
        assert not np.array_equal(before[..., 30:, :], after[..., 30:, :])


@pytest.mark.parametrize("bad", [1.0, 0.0, -0.5, 1.5, "median", "0.99", True, np.nan, None])
def test_bad_full_scale_policies_are_named(bad):
    q, k, v = _tensors(8, b=1)
    with pytest.raises(ValueError, match="av_full_scale must be 'max'.*quantile"):
        AttentionRanges.fit(q, k, v, top_k=5, mask=CAUSAL, av_full_scale=bad)


@pytest.mark.parametrize("bad", [1, 17, 5.0, True, "5"])
def test_bad_av_adc_bits_are_named(bad):
    with pytest.raises(ValueError, match="av_adc_bits .* integer in 2…16"):
        TopkimaHardware(chip_seed=0, av_adc_bits=bad)


def test_lm_eval_refuses_bad_av_options():
    from topkima.studies.lm_eval import LmEvalConfig
    with pytest.raises(ValueError, match="av_full_scale"):
        LmEvalConfig(av_full_scale=1.0).validated()
    with pytest.raises(ValueError, match="av_adc_bits"):
        LmEvalConfig(av_adc_bits=0).validated()
    assert LmEvalConfig(av_full_scale=0.999, av_adc_bits=8).validated().av_full_scale == 0.999


@pytest.mark.parametrize("bad", ["1", "0", "median", "-0.1"])
def test_the_command_line_refuses_bad_full_scale_policies(bad, capsys):
    from topkima.cli import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lm-eval", "--av-full-scale", bad])
    assert "expected max or a quantile strictly between 0 and 1" in capsys.readouterr().err
    args = build_parser().parse_args(["lm-eval", "--av-full-scale", "0.99", "--av-adc-bits", "8"])
    assert (args.av_full_scale, args.av_adc_bits) == (0.99, 8)


def test_attention_eval_refuses_bad_av_full_scales():
    from topkima.studies.attention_eval import AttentionEvalConfig
    with pytest.raises(ValueError, match="av_full_scale must be 'max'"):
        AttentionEvalConfig(av_full_scale=2.0).validated()
    with pytest.raises(ValueError, match="frozen ranges"):
        AttentionEvalConfig(av_full_scale=0.99, ranges="per-call").validated()
    assert AttentionEvalConfig(av_full_scale=0.99).validated().av_full_scale == 0.99
