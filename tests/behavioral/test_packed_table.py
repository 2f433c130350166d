"""The kernels' packed fixed-point tables (behavioral/macro/packed_table.py): what a word holds, and
that its interpolation equals the plain float64 one of the same values bit for bit."""
import numba
import numpy as np
import pytest

from topkima.behavioral.macro.packed_table import fixed_point_table, interpolate


@numba.njit
def _packed(words, scale, xs, out):
    for k in range(xs.size):
        out[k] = interpolate(words, scale, xs[k])


def _plain(values, steps, xs):
    """The float64 form, element by element in Python (the slow, obvious reference)."""
    out = np.empty(xs.size)
    for k, x in enumerate(xs):
        i = int(x)
        out[k] = values[i] + (x - i) * steps[i]
    return out


@pytest.mark.parametrize("table", [
    np.linspace(0.92, 0.05, 257) + 0.01 * np.sin(np.arange(257)),    # a discharge curve's shape (V)
    np.linspace(0.31, 1.28, 257),                                      # the leakage's relative rate
    np.array([-3.0e-3, 7.5e-4, 0.0, 2.9e-3, -1.0e-9]),                 # signs, a value near 0
    np.array([1.999, -1.999, 1.999]),                                  # steps of nearly 2³¹ scales
    np.array([0.0, 0.0]),
])
def test_interpolation_equals_the_float64_form_bit_for_bit(table):
    words, values, steps, scale = fixed_point_table(table)
    assert np.log2(scale) == int(np.log2(scale))                       # a power of two
    assert np.all(np.abs(values - table) <= scale / 2)                 # rounded to the nearest multiple
    assert np.abs(values - table).max() <= 2.0 ** -30 * max(np.abs(table).max(), 1e-300)
    np.testing.assert_array_equal(steps[:-1], np.diff(values))          # the steps are the values' differences
    assert steps[-1] == 0.0
    last = table.size - 1
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.uniform(0, last, 20_000), np.arange(last + 1.0), [last - 1e-12, 0.5, 1e-300]])
    got = np.empty(xs.size)
    _packed(words, scale, xs, got)
    np.testing.assert_array_equal(got, _plain(values, steps, xs))


def test_a_table_that_is_not_finite_is_refused():
    for bad in (np.array([1.0, np.nan]), np.array([]), np.ones((2, 2)), np.array([np.inf])):
        with pytest.raises(ValueError, match="non-empty 1-D array of finite values"):
            fixed_point_table(bad)


def test_a_table_whose_scale_would_be_subnormal_is_refused():
    with pytest.raises(ValueError, match="largest value must be 0 or at least"):
        fixed_point_table(np.array([1e-300, 0.0]))
    with pytest.raises(ValueError, match="do not fit its fixed point"):      # a step of 2³¹ scales
        fixed_point_table(np.array([-(1.0 - 2.0 ** -40), 1.0 - 2.0 ** -40]))   # rounded to ±2³⁰ scales
    words, values, steps, scale = fixed_point_table(np.zeros(3))
    assert np.all(words == 0) and np.all(values == 0.0) and scale > 0.0


def test_the_kernels_curve_and_leakage_equal_their_numpy_forms():
    """The kernels read the packed words; the numpy helpers (studies, fits) read the rounded float64
    arrays stored beside them: the same numbers, bit for bit, over the whole curve and beyond its ends."""
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.macro.bitline import leak_units, leak_units_array, v_of_units, v_of_units_array
    from topkima.calibration import load_calibration

    bl = TopkimaMacro(load_calibration()).instance(np.random.default_rng(0)).bitlines

    @numba.njit
    def kernel(bl, units, leak, u_phase, out_v, out_leak):
        for k in range(units.size):
            out_v[k] = v_of_units(bl, units[k])
            out_leak[k] = leak_units(bl, 7, leak[k], units[k], u_phase[k], bl.ramp_age_frac[7])

    last_units = bl.last_index / bl.points_per_unit
    rng = np.random.default_rng(1)
    units = np.concatenate([rng.uniform(-20.0, last_units + 20.0, 20_000), np.arange(bl.last_index + 1) / bl.points_per_unit])
    leak, u_phase = rng.uniform(0.0, 0.05, units.size), rng.uniform(0.0, 60.0, units.size)
    v, lk = np.empty(units.size), np.empty(units.size)
    kernel(bl, units, leak, u_phase, v, lk)
    np.testing.assert_array_equal(v, v_of_units_array(bl, units))
    np.testing.assert_array_equal(lk, np.array([leak_units_array(bl, 7, leak[k], units[k], u_phase[k], bl.ramp_age_frac[7])
                                                for k in range(units.size)]))
