"""Ramp wordline pulse generation at transistor level, in real ngspice: order, width, STOP, energy.

Four runs for the whole file (widths and chain benches at tt and ss, ~30 s of ngspice); every
test reads them. Expectations come from the circuit's job (row i pulses in ramp clock i + 1,
N x 0.5 ns wide at half the 0.5 V supply, nothing after the token leaves or after STOP) and
from physics (RC delays grow along the wordline, energy ~ C·V²), not from earlier outputs.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from topkima.circuits import ramp_chain as rc
from topkima.circuits import ramp_timing as rt
from topkima.circuits import ramp_widths as rw
from topkima.circuits.settings import CalSettings

UNIT_S = 0.5e-9          # PWM unit (SPEC §2: 2 GHz PWM clock)
V_ARRAY_V = 0.5          # wordline supply (SPEC §2)
QUICK_SS = CalSettings(quick=True, corner_name="ss")


@pytest.fixture(scope="module")
def widths_tt():
    return rw.measure_widths("tt", n_units=[1, 2, 3, 4, 5, 6])


@pytest.fixture(scope="module")
def chain_tt():
    return rc.measure_chain("tt")


@pytest.fixture(scope="module")
def ss_results():
    """The quick plan's two ss jobs, run in this process."""
    from topkima.circuits.jobs import run_jobs
    return run_jobs(rt.plan(QUICK_SS), workers=0)


def _by_n(widths):
    return {p["n_units"]: p for p in widths["per_n"]}


# ----------------------------------------------------------------------------- function

@pytest.mark.parametrize("which", ["tt", "ss"])
def test_exactly_one_wordline_per_clock_in_token_order(chain_tt, ss_results, which):
    chain = chain_tt if which == "tt" else ss_results["timing_chain_ss"]
    assert chain["rows"] == [0, 1, 31]
    # row i pulses in ramp clock i + 1 (row 31 stands for the last row); clock 0 is calibration;
    # the second token enters at clock 5 and STOP rises during that clock
    want = {"0": [0, 1, 0, 0, 0, 1, 0], "1": [0, 0, 1, 0, 0, 0, 0], "31": [0, 0, 0, 1, 0, 0, 0]}
    assert chain["pulses_per_clock"] == want
    assert chain["glitches"] == {"0": 0, "1": 0, "31": 0}
    per_clock = np.sum([want[r] for r in want], axis=0)
    assert per_clock.max() == 1


def test_nothing_pulses_after_the_token_leaves(chain_tt):
    assert all(p[4] == 0 for p in chain_tt["pulses_per_clock"].values())
    assert chain_tt["none_after_token_left_ok"]


@pytest.mark.parametrize("which", ["tt", "ss"])
def test_stop_lets_the_open_step_finish_then_halts_the_ramp(chain_tt, ss_results, which):
    chain = chain_tt if which == "tt" else ss_results["timing_chain_ss"]
    assert all(p[6] == 0 for p in chain["pulses_per_clock"].values())
    # the step that was open when STOP rose is not cut short
    last = chain["shapes"]["0"][-1]
    assert last["clock"] == 5
    assert last["near"]["width_s"] == pytest.approx(chain["n_units"] * UNIT_S, abs=0.25 * UNIT_S)
    assert chain["token_cleared_after_stop_ok"] and chain["stop_halts_ok"]


def test_token_settles_before_the_window_opens(chain_tt, ss_results):
    for chain in (chain_tt, ss_results["timing_chain_ss"]):
        assert chain["t_token_to_window_margin_s"] > 0.1e-9


def test_every_width_gives_one_pulse_and_the_window_flop_meets_setup(widths_tt, ss_results):
    for widths in (widths_tt, ss_results["timing_widths_ss"]):
        for p in widths["per_n"]:
            assert p["pulses_per_clock_far"] == [0, 1, 0]
            assert p["window_d_setup_slack_s"] > 0
            # the digital window is N PWM periods to within a few ps at every corner
            assert abs(p["window_width_error_units"]) < 0.05


# ----------------------------------------------------------------------------- width and timing

def test_wordline_width_matches_n_units_at_tt(widths_tt):
    for n, p in _by_n(widths_tt).items():
        for key in ("width_error_near_units", "width_error_far_units"):
            assert abs(p[key]) < 0.25, (n, key, p[key])
    # each extra unit adds one PWM period, at both ends of the row
    near = [p["width_near_s"] for p in widths_tt["per_n"]]
    far = [p["width_far_s"] for p in widths_tt["per_n"]]
    assert np.allclose(np.diff(near), UNIT_S, atol=0.02 * UNIT_S)
    assert np.allclose(np.diff(far), UNIT_S, atol=0.02 * UNIT_S)


def test_wordline_width_at_ss_within_a_quarter_unit(ss_results):
    for p in ss_results["timing_widths_ss"]["per_n"]:
        if p["n_units"] >= 2:
            assert abs(p["width_error_near_units"]) < 0.25 and abs(p["width_error_far_units"]) < 0.25


def test_far_end_is_later_and_slower_than_the_driver_end(widths_tt):
    for p in widths_tt["per_n"]:
        assert 0.25e-9 < p["delay_near_s"] < p["delay_far_s"] < 1.5e-9   # window opens half a PWM period late
        assert 20e-12 < p["rise_10_90_near_s"] < p["rise_10_90_far_s"] < 0.5e-9
        assert 20e-12 < p["fall_90_10_near_s"] < p["fall_90_10_far_s"] < 0.5e-9
        assert 0.45 < p["v_peak_far_v"] < 0.55


def test_slow_corner_is_later(widths_tt, ss_results):
    tt, ss = _by_n(widths_tt), _by_n(ss_results["timing_widths_ss"])
    for n in ss:
        assert ss[n]["delay_far_s"] > tt[n]["delay_far_s"]


def test_read_charge_grows_one_unit_per_unit_and_slow_edges_lose_some(widths_tt):
    q = np.array([np.mean(p["charge_width_by_section_units"]) for p in widths_tt["per_n"]])
    assert np.allclose(np.diff(q), 1.0, atol=0.1)
    # finite edges at a near-threshold gate pass less charge than the ideal 20 ps pulse
    assert np.all(q < np.arange(1, 7)) and np.all(q > np.arange(1, 7) - 1)


def test_skew_between_rows_is_small(chain_tt):
    # rows share 24 µm clock and window lines: picoseconds, not tens of them
    assert 0 <= chain_tt["skew_near_s"] < 10e-12 and 0 <= chain_tt["skew_far_s"] < 10e-12


# ----------------------------------------------------------------------------- energy

def test_energy_per_step_is_positive_and_plausible(chain_tt, widths_tt):
    parts = [chain_tt[k] for k in ("e_generator_j", "e_control_j", "e_register_j", "e_drivers_idle_j",
                                   "e_predriver_j", "e_wordline_j")]
    assert all(e > 0 for e in parts)
    assert chain_tt["e_step_j"] == pytest.approx(sum(parts))
    assert 0.1e-12 < chain_tt["e_step_j"] < 5e-12
    # the wordline draws C·V² from the 0.5 V supply: C between the wire alone and the
    # strong-inversion gate estimate plus wire (with the driver's own junctions, +30 %)
    c_hi = 1.3 * (rt.C_GATE_ACCESS_HAND_F * 512 + rt.C_WIRE_WL_F)
    for p in widths_tt["per_n"]:
        assert rt.C_WIRE_WL_F * V_ARRAY_V ** 2 < p["e_wordline_j"] < c_hi * V_ARRAY_V ** 2
    # 29 idle token flops still see every clock edge
    assert chain_tt["e_idle_row_j"] > 0 and chain_tt["e_register_j"] > 29 * chain_tt["e_idle_row_j"]


# ----------------------------------------------------------------------------- plan and summary

def test_plan_labels_and_json_able_kwargs():
    for settings in (CalSettings(quick=True), CalSettings(quick=False), QUICK_SS):
        jobs = rt.plan(settings)
        assert jobs and all(j.label.startswith("timing_") and j.block == "ramp" for j in jobs)
        assert len({j.label for j in jobs}) == len(jobs)
        for j in jobs:
            json.dumps(j.kwargs)
            assert j.netlists == ("ramp_timing.sp", "digital.sp")


def test_summary_keys_carry_units_and_a_failed_check_refuses(ss_results):
    summary = rt.timing_section(QUICK_SS, ss_results)
    ss = summary["corners"]["ss"]
    assert all(ss["functional_checks"].values())
    assert set(ss["by_n"]) == {"1", "2", str(rt.N_UNITS_RAMP)}
    assert ss["e_step_j"] > 0 and ss["delay_far_s"] > 0

    def unitless(d, path=""):
        bad = []
        for k, v in d.items():
            if isinstance(v, dict):
                bad += unitless(v, path + k + ".")
            elif not isinstance(v, (str, bool)) and not k.endswith(
                    ("_s", "_j", "_v", "_f", "_m", "_ohm", "_units", "_columns", "_column")):
                bad.append(path + k)
        return bad

    assert unitless(summary) == []
    broken = copy.deepcopy(ss_results)
    broken["timing_chain_ss"]["stop_halts_ok"] = False
    with pytest.raises(RuntimeError, match="stop_halts_ramp"):
        rt.timing_section(QUICK_SS, broken)


# ----------------------------------------------------------------------------- arguments

def test_selects_are_one_hot_per_mux():
    for n in range(1, 7):
        sel = rt.selects(n)
        assert sum(sel[k] for k in ("sa0", "sa1", "sa2", "sa3", "saz")) == 1
        assert sum(sel[k] for k in ("sb0", "sb1", "sbz")) == 1


@pytest.mark.parametrize("bad", [0, 7, 2.5, True, "3", None])
def test_bad_width_is_rejected(bad):
    with pytest.raises(ValueError, match="n_units"):
        rc.chain_netlist("tt", n_units=bad)
    with pytest.raises(ValueError, match="n_units"):
        rt.selects(bad)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_units": []}, "n_units"),
    ({"n_units": [2, 2]}, "distinct"),
    ({"n_units": 3}, "list"),
    ({"drive": "middle"}, "drive"),
    ({"wn_m": -1e-6}, "wn_m"),
    ({"wp_m": float("nan")}, "wp_m"),
    ({"supplies": {"v_array_v": 0.9, "v_digital_v": 0.8}}, "DOWN"),
    ({"supplies": {"v_digital_v": 5.0}}, "v_digital_v"),
    ({"supplies": {"vdd": 0.8}}, "supplies"),
])
def test_bad_bench_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rw.widths_netlist("tt", **kwargs)


def test_bad_corner_and_stop_are_rejected():
    with pytest.raises(ValueError, match="corner"):
        rw.widths_netlist("typical")
    with pytest.raises(ValueError, match="stop"):
        rc.chain_netlist("tt", stop="yes")
