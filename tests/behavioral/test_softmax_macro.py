"""Structure of the softmax-macro model (paper eqs. 3–4): relations, not outputs."""
import math

import numpy as np
import pytest

from topkima.behavioral import softmax_macro as sm
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


@pytest.fixture(scope="module")
def timing():
    return sm.MacroTiming(t_wr_s=320e-9, t_pwm_s=62e-9, t_clk_s=4e-9, n_ramp_steps=32, t_arb_s=2.08e-9,
                          t_nl_s=6.5e-9, t_clk_sort_s=0.5e-9)


@pytest.fixture(scope="module")
def energy(cal):
    return sm.energy_from_calibration(cal, input_activity=0.9)[0]


def test_equations_term_by_term(timing):
    d, k, a = 200, 5, 0.4
    t = timing
    conv = sm.latency("conventional", d, k, t)["total"]
    assert conv == pytest.approx(t.t_wr_s + d * (t.t_pwm_s + t.t_ima_s + d * t.t_nl_s))
    t_sort = min(d * math.log2(d), d * k) * t.t_clk_sort_s
    assert sm.t_sort_s(d, k, t.t_clk_sort_s) == pytest.approx(t_sort)
    dtopk = sm.latency("dtopk", d, k, t)["total"]
    assert dtopk == pytest.approx(t.t_wr_s + d * (t.t_pwm_s + t.t_ima_s + t_sort + k * t.t_nl_s))
    t_ima_arb = max(a * t.t_ima_s + t.t_arb_s, t.t_clk_s + k * t.t_arb_s)
    topk = sm.latency("topkima", d, k, t, a)["total"]
    assert topk == pytest.approx(t.t_wr_s + d * (t.t_pwm_s + t_ima_arb + k * t.t_nl_s))


def test_t_sort_takes_the_smaller_of_the_two_sorts():
    assert sm.t_sort_s(384, 5, 1.0) == 384 * 5                      # d·k < d·log2 d
    assert sm.t_sort_s(16, 5, 1.0) == pytest.approx(16 * 4)         # d·log2 d < d·k


def test_alpha_one_makes_topkima_a_full_ramp_macro(timing):
    # α = 1: T_ima,arb = T_ima + T_arb (the arbiter term exceeds the serial-grant bound)
    assert float(sm.t_ima_arb_s(1.0, 5, timing)) == pytest.approx(timing.t_ima_s + timing.t_arb_s)
    lat = sm.latency("topkima", 128, 5, timing, 1.0)
    assert lat["ima_arb"] == pytest.approx(128 * (timing.t_ima_s + timing.t_arb_s))


def test_small_alpha_is_bounded_by_the_serial_grants(timing):
    k = 5
    assert float(sm.t_ima_arb_s(1e-3, k, timing)) == pytest.approx(timing.t_clk_s + k * timing.t_arb_s)


def test_latency_grows_as_the_equations_say(timing):
    ds = [64, 128, 256, 512]
    for kind in sm.KINDS:
        lat = [sm.latency(kind, d, 5, timing, 0.5)["total"] for d in ds]
        assert all(b > a for a, b in zip(lat, lat[1:]))
    # conventional is quadratic in d: the second difference of T(d) is 2·T_nl per d² step
    f = [sm.latency("conventional", d, 5, timing)["total"] for d in (100, 200, 300)]
    assert f[2] - 2 * f[1] + f[0] == pytest.approx(2 * 100 ** 2 * timing.t_nl_s)
    # Topkima is linear in d while the keys fit one array
    g = [sm.latency("topkima", d, 5, timing, 0.5)["total"] for d in (50, 100, 150)]
    assert g[2] - 2 * g[1] + g[0] == pytest.approx(0.0, abs=1e-15)


def test_latency_is_the_sum_of_its_breakdown(timing):
    for kind in sm.KINDS:
        for pipelined in (False, True):
            lat = sm.latency(kind, 384, 5, timing, 0.3, pipelined)
            assert lat["total"] == pytest.approx(sum(v for key, v in lat.items() if key != "total"))


def test_pipelining_never_slows_and_hides_the_faster_stage(timing):
    for kind in sm.KINDS:
        serial = sm.latency(kind, 384, 5, timing, 0.3)["total"]
        piped = sm.latency(kind, 384, 5, timing, 0.3, pipelined=True)
        assert piped["total"] <= serial
        assert min(piped["analog"], piped["digital"]) < max(piped["analog"], piped["digital"]) / 100


def test_energy_is_the_sum_of_its_breakdown(energy):
    for kind in sm.KINDS:
        e = sm.energy(kind, 384, 5, energy, 0.3)
        assert e["total"] == pytest.approx(sum(v for key, v in e.items() if key != "total"))
        r = sm.row_energy(kind, 384, 5, energy, 0.3)
        assert e["total"] == pytest.approx(384 * r["total"] + e["write"])


def test_alpha_one_topkima_converts_like_the_full_ramp_macros(energy):
    full = sm.row_energy("dtopk", 256, 5, energy)
    tk = sm.row_energy("topkima", 256, 5, energy, 1.0)
    for part in ("mac", "calibration", "ramp", "comparators", "counter"):
        assert tk[part] == pytest.approx(full[part])
    early = sm.row_energy("topkima", 256, 5, energy, 0.25)
    assert early["ramp"] == pytest.approx(0.25 * tk["ramp"])
    assert early["comparators"] == pytest.approx(0.25 * tk["comparators"])


def test_softmax_counts_d_values_conventional_and_k_otherwise(energy):
    d, k = 300, 5
    conv = sm.row_energy("conventional", d, k, energy)["softmax"]
    topk = sm.row_energy("topkima", d, k, energy, 0.5)["softmax"]
    assert conv - topk == pytest.approx((d - k) * energy.e_nl_value_j)


def test_sub_topk_quotas_and_parallel_arrays(timing):
    assert sm.quotas(384, 5, 256) == (3, 2)                  # SPEC §3
    assert sm.quotas(384, 5, 128) == (2, 2, 1)
    assert sm.quotas(200, 5, 256) == (5,)
    assert sum(sm.quotas(1000, 5, 256)) == 5
    assert sm.quotas(4096, 5, 256) == (1,) * 16              # a global k-counter
    # rows > 256 keys: the serial-grant bound uses the largest quota, not k
    assert float(sm.t_ima_arb_s(1e-3, 5, timing, d=384)) == pytest.approx(timing.t_clk_s + 3 * timing.t_arb_s)
    assert sm.n_arrays(384, 256) == 2 and sm.n_arrays(256, 256) == 1


def test_per_row_alphas_average_the_per_row_latencies(timing):
    alphas = np.array([0.05, 0.9])
    lat = sm.latency("topkima", 64, 5, timing, alphas)["ima_arb"] / 64
    assert lat == pytest.approx(float(np.mean(sm.t_ima_arb_s(alphas, 5, timing))))
    assert lat > float(sm.t_ima_arb_s(alphas.mean(), 5, timing)) - 1e-18


def test_calibration_clock_adds_one_clock_per_row_to_every_macro(cal):
    plain = sm.timing_from_calibration(cal)
    with_cal = sm.timing_from_calibration(cal, include_calibration_clock=True)
    for kind in sm.KINDS:
        diff = sm.latency(kind, 100, 5, with_cal, 0.5)["total"] - sm.latency(kind, 100, 5, plain, 0.5)["total"]
        assert diff == pytest.approx(100 * float(cal.column["timing"]["t_clk_ima_s"]))


def test_timing_and_energy_come_from_the_artefact(cal):
    t = sm.timing_from_calibration(cal, t_pwm_reading="62ns")
    assert t.t_pwm_s == cal.column["timing"]["t_pwm_s"]
    assert t.t_ima_s == pytest.approx(cal.column["timing"]["n_ramp_steps"] * cal.column["timing"]["t_clk_ima_s"])
    assert t.t_arb_s == cal.digital["t_arb_total_s"]
    assert sm.timing_from_calibration(cal, t_pwm_reading="108.5ns").t_pwm_s == pytest.approx(108.5e-9)
    e, prov = sm.energy_from_calibration(cal)
    assert e.e_decision_j == cal.comparator["e_per_decision_j"]
    assert set(prov) <= {f for f in e.__dataclass_fields__}
    assert all(isinstance(v, str) and v for v in prov.values())
    with pytest.raises(ValueError, match="t_pwm_reading"):
        sm.timing_from_calibration(cal, t_pwm_reading="70ns")


def test_bad_inputs_are_refused(timing, energy):
    with pytest.raises(ValueError, match="alpha"):
        sm.latency("topkima", 100, 5, timing, 0.0)
    with pytest.raises(ValueError, match="k must be"):
        sm.latency("topkima", 4, 5, timing, 0.5)
    with pytest.raises(ValueError, match="sequence length"):
        sm.energy("conventional", 0, 5, energy)
    with pytest.raises(ValueError, match="kind"):
        sm.latency("analog", 10, 5, timing)
    with pytest.raises(ValueError, match="t_pwm_s"):
        sm.MacroTiming(t_wr_s=1e-9, t_pwm_s=-1.0, t_clk_s=4e-9, n_ramp_steps=32, t_arb_s=1e-9, t_nl_s=1e-9,
                       t_clk_sort_s=1e-9)
