"""Hardware-aware fine-tuning (issue 15, option (c)): the chip's read-back errors measured on
real MiniLM scores with the calibrated behavioural chip, the noise drawn from them, and what the
noise does inside the TFCBP attention.

Needs the optional [train] extra (JAX): without it these tests skip, saying how to install it."""
import numpy as np
import pytest

pytest.importorskip("jax", reason="the [train] extra is not installed: pip install -e '.[train]'")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from topkima.studies import chip_noise, tfcbp  # noqa: E402

SENTENCES = ["A gripping, beautifully acted film that never lets go of you.",
             "Dull, overlong and oddly pleased with itself.",
             "The script is a mess, but the leads are charming enough to carry it.",
             "One of the year's best: funny, sad and wise all at once.",
             "I wanted to like it more than I did.",
             "Nothing here you have not seen done better a dozen times before, and with more wit."]


@pytest.fixture(scope="module")
def measured():
    """The errors of two calibrated chips on real scores (windows from other sentences, k = 5)."""
    from topkima.behavioral.minilm import MiniLM, WeightsMissingError
    from topkima.studies.adc_windows import calibrate_windows
    try:
        model = MiniLM.load()
    except WeightsMissingError as exc:
        pytest.skip(str(exc))
    windows = calibrate_windows(model, SENTENCES[3:] * 4, [5])[5]
    return chip_noise.measure_chip_errors(model, SENTENCES, windows, 5, chip_seeds=(1000, 1001), seed=0)


@pytest.mark.weights
def test_measured_errors_are_more_than_rounding_and_within_the_ramp(measured):
    """A 5-bit ramp ADC that only rounded would read a granted key back within ½ LSB (spread
    1/√12 LSB); the chip's mismatch and comparator noise widen that (seen: median |error|
    about 2.5 LSB), but a read-back never leaves the 32-step ramp by much."""
    assert len(measured.errors) == 6 and all(len(heads) == 12 for heads in measured.errors)
    in_lsb = np.concatenate([e / measured.lsb_units[layer, h]
                             for layer, heads in enumerate(measured.errors) for h, e in enumerate(heads)])
    # six sentences, two chips: every real row of every head grants up to five keys
    assert in_lsb.size > 6 * 12 * 2 * 6 * 5 * 0.8
    assert in_lsb.std() > 1 / np.sqrt(12)
    assert np.median(np.abs(in_lsb)) < 8
    assert np.mean(np.abs(in_lsb) < 32) > 0.99
    summary = measured.summary()
    assert set(summary) == {str(i) for i in range(6)} and summary["0"]["n"] > 0


@pytest.mark.weights
def test_measurement_is_seeded(measured):
    from topkima.behavioral.minilm import MiniLM
    from topkima.studies.adc_windows import calibrate_windows
    model = MiniLM.load()
    windows = calibrate_windows(model, SENTENCES[3:] * 4, [5])[5]
    again = chip_noise.measure_chip_errors(model, SENTENCES, windows, 5, chip_seeds=(1000, 1001), seed=0)
    for a, b in zip(measured.errors, again.errors):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)


@pytest.mark.weights
def test_drawn_noise_has_the_measured_distribution(measured):
    """Shape and scale: draws from the quantile table against each head's measured errors (a
    two-sample Kolmogorov–Smirnov distance, the spread and the mean)."""
    table = measured.quantiles()
    assert table.shape == (6, 12, chip_noise.N_QUANTILES) and table.dtype == np.float32
    shape = (8, 12, 40, 40)
    for layer in (0, 3, 5):
        draws = np.asarray(chip_noise.draw_noise(table[layer], jax.random.PRNGKey(layer), shape))
        assert draws.shape == shape
        for h in (0, 5, 11):
            ref = np.sort(measured.errors[layer][h])
            got = np.sort(draws[:, h].ravel())
            grid = np.union1d(ref, got)
            ks = np.max(np.abs(np.searchsorted(ref, grid, "right") / ref.size
                               - np.searchsorted(got, grid, "right") / got.size))
            assert ks < 0.03, (layer, h, ks)
            # within 4 standard errors of the draws' mean (heavy tails: saturated reads) and 5 %
            lsb, se = measured.lsb_units[layer, h], ref.std() / np.sqrt(got.size)
            assert abs(got.mean() - ref.mean()) < 4 * se + 0.05 * lsb
            assert abs(got.std() - ref.std()) < 0.05 * ref.std()


def test_draws_are_seeded_by_the_key():
    table = np.sort(np.random.default_rng(0).normal(size=(12, 64)), axis=-1).astype(np.float32)
    a = chip_noise.draw_noise(table, jax.random.PRNGKey(3), (2, 12, 5, 5))
    b = chip_noise.draw_noise(table, jax.random.PRNGKey(3), (2, 12, 5, 5))
    c = chip_noise.draw_noise(table, jax.random.PRNGKey(4), (2, 12, 5, 5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # each head draws from its own row of the table
    for h in range(12):
        assert np.isin(np.asarray(a[:, h]), table[h]).all()


def _inputs(seed=0, batch=2, heads=3, tokens=9, d=32):
    rng = np.random.default_rng(seed)
    q, k, v = (jnp.asarray(rng.normal(size=(batch, heads, tokens, d)) * s, jnp.float32) for s in (0.3, 1, 1))
    mask = jnp.asarray(np.arange(tokens)[None, :] < np.array([tokens, 6])[:, None])
    return q, k, v, mask


def test_zero_noise_is_tfcbp_and_a_row_constant_changes_nothing():
    """Softmax over the kept keys and top-k are invariant to adding one constant to a row."""
    q, k, v, mask = _inputs()
    base = np.asarray(tfcbp.tfcbp_attention(q, k, v, mask, 3))
    zero = np.asarray(tfcbp.tfcbp_attention(q, k, v, mask, 3, score_noise=jnp.zeros((2, 3, 9, 9))))
    assert np.array_equal(base, zero)
    shift = jnp.broadcast_to(jnp.arange(9.0)[None, None, :, None] * 16, (2, 3, 9, 9))
    np.testing.assert_allclose(np.asarray(tfcbp.tfcbp_attention(q, k, v, mask, 3, score_noise=shift)), base,
                               rtol=1e-5, atol=1e-6)


def test_noise_acts_before_top_k_and_not_on_the_gradient_path():
    """An error that lifts key 0 above every other key makes it each row's top-1 (the chip's
    selection errors), so with k = 1 every row's output is key 0's quantised value; the noise
    itself carries no gradient."""
    from topkima.behavioral.attention import V_MAX_CODE
    from topkima.behavioral.quantize import quantize_symmetric
    q, k, v, mask = _inputs(seed=1)
    noise = np.zeros((2, 3, 9, 9), np.float32)
    noise[..., 0] = 1e5
    plain = np.asarray(tfcbp.tfcbp_attention(q, k, v, mask, 1))
    noisy = np.asarray(tfcbp.tfcbp_attention(q, k, v, mask, 1, score_noise=jnp.asarray(noise)))
    v_codes, s_v = quantize_symmetric(np.asarray(v, np.float64), V_MAX_CODE,
                                      np.broadcast_to(np.asarray(mask)[:, None, :], v.shape[:-1]))
    expected = np.broadcast_to((v_codes * s_v)[:, :, :1, :], noisy.shape)
    real = np.asarray(mask)[:, None, :, None]
    np.testing.assert_allclose(np.where(real, noisy, 0), np.where(real, expected, 0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(noisy, plain)
    g = jax.grad(lambda n: jnp.sum(tfcbp.tfcbp_attention(q, k, v, mask, 1, score_noise=n)))(jnp.asarray(noise))
    assert np.array_equal(np.asarray(g), np.zeros_like(noise))


def test_hwaware_training_needs_its_noise_and_is_an_allowed_mode():
    from topkima.studies.finetune import TRAININGS, FinetuneConfig, _loss_fn
    assert "hwaware" in TRAININGS
    FinetuneConfig(trainings=("hwaware",)).validate()
    with pytest.raises(ValueError, match="needs the chip's error quantiles"):
        _loss_fn("hwaware", 5)
