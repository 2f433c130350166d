"""Column block in real ngspice: physics checks on the transistor-level column."""
import numpy as np
import pytest
from scipy import stats

from topkima.circuits import column as col
from topkima.circuits import column_measure as cm
from topkima.circuits import timing as tm
from topkima.circuits.corners import Supplies
from topkima.circuits.mismatch import sigma_vth_v

SUP = Supplies().as_dict()


@pytest.fixture(scope="module")
def discharge():
    return cm.measure_discharge("tt", SUP, 8, [4, 16], 60e-9, share_r_units=[16])


def test_discharge_curve_falls_monotonically_at_a_plausible_rate(discharge):
    units = np.asarray(discharge["units"])
    v = np.asarray(discharge["v_rbl_v"])
    on = units > 20  # after the wordlines' rising edges
    assert np.all(np.diff(v[on]) < 0)
    slope_v_per_unit = (np.interp(40, units, v) - np.interp(140, units, v)) / 100
    # ~0.2 µA cell on ~0.17 pF of bitline: 0.3 … 1.5 mV per 0.5 ns unit
    assert 0.3e-3 < slope_v_per_unit < 1.5e-3
    assert 0.45 < v[0] < 0.52  # precharged to the 0.5 V array supply


def test_pulse_charge_scales_with_width_and_a_stored_zero_barely_discharges(discharge):
    drop = np.asarray(discharge["v_before_v"]) - np.asarray(discharge["v_after_v"])
    w4, w16, share16 = drop
    assert w16 / w4 == pytest.approx(4.0, rel=0.05)
    assert 0 < share16 < 0.3 * w16


def test_settling_is_far_shorter_than_a_ramp_clock(discharge):
    assert max(discharge["settle_1pct_s"]) < 0.1 * tm.T_CLK_RAMP_S


def _vectors(mac_sign: int):
    keys = [3] * 16 + [0] * 48
    inputs = [mac_sign * 5] * 16 + [0] * 48
    return keys, inputs


def test_differential_voltage_follows_the_mac_sign_and_size():
    runs = [cm.measure_mac("tt", SUP, *_vectors(s)) for s in (-1, 0, 1)]
    v_diff = [r["v_rbl_r_v"] - r["v_rbl_l_v"] for r in runs]
    assert [r["mac_units"] for r in runs] == [-240, 0, 240]
    assert v_diff[0] < -0.05 and abs(v_diff[1]) < 1e-3 and v_diff[2] > 0.05
    assert v_diff[2] == pytest.approx(-v_diff[0], rel=0.05)  # symmetric wiring


def test_cell_current_mismatch_sigma_matches_its_pelgrom_propagation():
    sigma_vth = sigma_vth_v("n", col.W_READ_M, col.L_READ_M)
    h = 1e-3
    fd = cm.measure_cell_currents("tt", SUP, [[h, 0], [-h, 0], [0, h], [0, -h]], [0.4])
    i = np.log(np.asarray(fd["i_on_a"][0]))
    sens = np.array([(i[0] - i[1]) / (2 * h), (i[2] - i[3]) / (2 * h)])  # d ln I / d Vth per device
    expected = sigma_vth * np.sqrt(np.sum(sens ** 2))
    n = 80
    draws = np.random.default_rng(7).normal(0, sigma_vth, (n, 2))
    mc = cm.measure_cell_currents("tt", SUP, draws.tolist(), [0.4])
    ratio = np.asarray(mc["i_on_a"][0]) / mc["i_on_nominal_a"][0]
    s = np.log(ratio).std(ddof=1)
    lo, hi = (s * np.sqrt((n - 1) / stats.chi2.ppf([0.995, 0.005], n - 1)))
    assert lo < expected < hi, (s, expected)
    assert 0.03 < expected < 0.3


def test_idle_stacks_leak_orders_of_magnitude_below_a_read():
    cur = cm.measure_cell_currents("tt", SUP, [], [0.5, 0.2])
    for i_on, i1, i0 in zip(cur["i_on_nominal_a"], cur["i_leak_stored1_a"], cur["i_leak_stored0_a"]):
        assert 0 < i1 < 1e-3 * i_on and 0 < i0 < 1e-3 * i_on


@pytest.mark.slow
def test_end_to_end_code_rises_with_the_mac_value():
    codes = []
    for level in (-2, 1, 3, 6):
        keys = [level] * 16 + [0] * 48
        inputs = [4] * 16 + [0] * 48
        codes.append(cm.measure_conversion("tt", SUP, keys, inputs, 32, 4, 4)["code"])
    # MAC = -128, 64, 192, 384 units; the ADC window spans 0 … 128 units (32 × 4)
    assert codes == sorted(codes)
    assert codes[0] == 0 and codes[-1] == 31 and 0 < codes[1] < codes[2] <= 31


def test_conversion_energy_is_positive_and_grows_with_activity():
    rng = np.random.default_rng(3)
    e = []
    for activity in (0.0, 1.0):
        keys, inputs = col.random_vectors(rng, activity, q_max=8, k_max=3)
        e.append(cm.measure_conversion_energy("tt", SUP, keys, inputs, 32, 4, 4)["e_bitline_j"])
    assert 1e-15 < e[0] < e[1] < 10e-12
