"""Counters, arbiter and encoder at transistor level: function and physics, real ngspice.

The quick characterisation plan (tt and ss) is run once for the module; the tests read its
results. One extra short run checks the k-counter at a k whose code a multi-bit count
transition can flash (k = 7 during 3 -> 4), the case a combinational STOP decode got wrong.
"""
from __future__ import annotations

import copy
import json
import math

import pytest

from topkima.circuits import digital, digital_arbiter, digital_counters
from topkima.circuits.jobs import run_jobs
from topkima.circuits.settings import CalSettings

VDD_V = 0.8
E_MIN_J, E_MAX_J = 0.1e-15, 10e-12   # plausible energy per digital event


@pytest.fixture(scope="module")
def quick():
    settings = CalSettings(quick=True)
    results = run_jobs(digital.plan(settings), workers=0)
    return settings, results


def _r(results, corner, name):
    return results[f"digital/{corner}/{name}"]


@pytest.mark.parametrize("corner", ["tt", "ss"])
def test_ramp_counter_counts_0_to_31_and_wraps(quick, corner):
    rc = _r(quick[1], corner, "ramp_counter")
    assert rc["codes"] == [j % 32 for j in range(34)]
    assert rc["counts_ok"] and rc["wraps_ok"]
    assert 20e-12 < rc["t_clk_q_s"] < 1e-9


@pytest.mark.parametrize("corner", ["tt", "ss"])
def test_kcounter_raises_stop_exactly_at_k(quick, corner):
    kc = _r(quick[1], corner, "kcounter_k5")
    assert kc["counts"] == [0, 1, 2, 3, 4, 5, 5, 5]        # frozen at k after STOP
    assert kc["stops"] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert kc["v_stop_max_before_k_v"] < 0.1 * VDD_V        # no STOP pulse before the k-th grant
    assert 0 < kc["t_count_stop_s"] < kc["t_decode_s"] < 1e-9


def test_kcounter_is_glitch_free_where_count_bits_race():
    kc = digital_counters.measure_kcounter("ss", VDD_V, k=7)
    assert kc["stop_at_k_ok"]
    assert kc["stops"].index(1) == 7
    assert kc["v_stop_max_before_k_v"] < 0.1 * VDD_V


@pytest.mark.parametrize("corner", ["tt", "ss"])
def test_arbiter_grants_lower_address_on_simultaneous_requests(quick, corner):
    cell = _r(quick[1], corner, "arb_cell")
    assert cell["grants"][0] == [1, 0]          # r0 and r1 together: input 0 wins
    assert cell["grants"][1] == [0, 1]          # r0 withdrawn: r1 served next
    assert cell["lower_address_wins_ok"] and cell["function_ok"]


def test_arbiter_grants_single_requester_and_never_preempts(quick):
    cell = _r(quick[1], "tt", "arb_cell")
    assert cell["grants"][3] == [0, 1]          # r1 alone
    assert cell["grants"][4] == [0, 1]          # r0 arrives while g1 is out: g1 kept
    assert cell["grants"][7] == [1, 0]          # r0 alone
    assert cell["grants"][2] == cell["grants"][8] == [0, 0]


def test_tree_is_the_sum_of_its_levels_and_slower_than_bare_cells(quick):
    tree = _r(quick[1], "tt", "arb_tree_a0")
    cell = _r(quick[1], "tt", "arb_cell")
    assert tree["grant_reaches_leaf_ok"] and tree["n_inputs"] == 256
    parts = sum(tree["t_req_up_per_level_s"]) + tree["t_root_ack_s"] + sum(tree["t_gnt_down_per_level_s"])
    assert parts == pytest.approx(tree["t_grant_tree_s"], rel=1e-3)
    # wires only add load: every level at least as slow as the bare cell, the top ones slower
    assert tree["t_grant_tree_s"] > 8 * cell["t_stage_s"]
    assert tree["t_req_up_per_level_s"][6] > tree["t_req_up_per_level_s"][0]
    assert tree["t_handshake_cycle_s"] > tree["t_grant_tree_s"]


@pytest.mark.parametrize("corner", ["tt", "ss"])
def test_encoder_maps_one_hot_to_binary(quick, corner):
    enc = _r(quick[1], corner, "encoder")
    assert enc["enc8_addresses"] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 0]
    assert 0 < enc["t_enc_rise_s"] < 2e-9 and 0 < enc["t_enc_fall_s"] < 2e-9


def test_ss_is_slower_than_tt(quick):
    s = digital.artefact_section(*quick)["corners"]
    for key in ("t_arb_stage_s", "t_arb_tree_grant_s", "t_encoder_s", "t_counter_clk_q_s",
                "t_kcounter_count_stop_s", "t_kcounter_decode_s"):
        assert s["ss"][key] > 1.05 * s["tt"][key], key
    # leakage falls with a higher threshold
    assert s["ss"]["p_leak_arb_cell_w"] < s["tt"]["p_leak_arb_cell_w"]


def test_energies_positive_and_plausible(quick):
    s = digital.artefact_section(*quick)["corners"]
    for corner in ("tt", "ss"):
        energies = {k: v for k, v in s[corner].items() if k.startswith("e_")}
        assert len(energies) >= 6
        for key, e in energies.items():
            assert E_MIN_J < e < E_MAX_J, (corner, key, e)
        # a grant through 8 levels with ~380 µm of wire each way costs more than one bare cell
        assert s[corner]["e_per_grant_tree_j"] > 4 * s[corner]["e_arb_cell_handshake_j"]
        for key, p in s[corner].items():
            if key.startswith("p_leak"):
                assert 0 < p < 1e-3, (corner, key, p)


_UNIT_SUFFIXES = ("_s", "_j", "_w", "_v", "_m", "_f_per_m", "_ohm_per_m")
_UNITLESS = {"levels", "encoder_levels", "n_columns", "k_for_count_stop"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_keys(tree, path=""):
    """(key, path) of every number, list of numbers, or dict of numbers in a nested dict."""
    for key, value in tree.items():
        if _is_number(value) or (isinstance(value, list) and value and all(map(_is_number, value))):
            yield key, path
        elif isinstance(value, dict):
            if value and all(map(_is_number, value.values())):
                yield key, path           # e.g. {"0": t} keyed by address: the unit is on this key
            else:
                yield from _numeric_keys(value, path + "/" + key)


def test_summary_has_units_and_the_slow_corner_total(quick):
    summary = digital.artefact_section(*quick)
    json.dumps(summary)
    for key, where in _numeric_keys(summary):
        assert key in _UNITLESS or key.endswith(_UNIT_SUFFIXES), f"{where}/{key} has no unit"
    ss = summary["corners"]["ss"]
    total = ss["t_arb_tree_grant_s"] + ss["t_encoder_s"] + ss["t_kcounter_count_stop_s"]
    assert summary["t_arb_total_s"] == pytest.approx(total)
    assert summary["t_arb_arbiter_encoder_s"] < summary["t_arb_total_s"]
    assert 0.2e-9 < summary["t_arb_total_s"] < 20e-9


def test_summary_refuses_a_failed_function_check(quick):
    settings, results = quick
    broken = copy.deepcopy(results)
    # a failure at the extra slow corner is recorded; at the run's corner (tt) it stops the fit
    broken["digital/ss/arb_cell"]["lower_address_wins_ok"] = False
    section = digital.artefact_section(settings, broken)
    assert section["failed_checks"] == ["ss: arbiter_lower_address_wins"]
    assert "failed_checks" not in digital.artefact_section(settings, results)
    broken["digital/tt/arb_cell"]["lower_address_wins_ok"] = False
    with pytest.raises(RuntimeError, match="tt: arbiter_lower_address_wins"):
        digital.artefact_section(settings, broken)
    del broken["digital/tt/encoder"]
    with pytest.raises(KeyError, match="digital/tt/encoder"):
        digital.artefact_section(settings, broken)


def test_plan_corners_and_jobs_are_json():
    jobs = digital.plan(CalSettings(quick=True, corner_name="ff"))
    labels = [j.label for j in jobs]
    assert len(set(labels)) == len(labels)
    assert {lab.split("/")[1] for lab in labels} == {"tt", "ss", "ff"}
    for job in jobs:
        json.dumps(job.kwargs)
        assert job.netlists == ("digital.sp",) and job.block == "digital"
        assert len(job.key()) == 64
    full = digital.plan(CalSettings(quick=False))
    assert len(full) > len(digital.plan(CalSettings(quick=True)))


@pytest.mark.parametrize("kwargs, match", [
    ({"corner_name": "tt", "vdd_v": math.nan}, "vdd_v"),
    ({"corner_name": "tt", "vdd_v": "0.8"}, "vdd_v"),
    ({"corner_name": "tt", "vdd_v": 3.3}, "vdd_v"),
    ({"corner_name": "slowest", "vdd_v": VDD_V}, "unknown corner"),
])
def test_bad_supply_and_corner_rejected(kwargs, match):
    for fn in (digital_counters.measure_ramp_counter, digital_counters.measure_kcounter, digital_arbiter.measure_arb_cell,
               digital_arbiter.measure_arb_tree, digital_arbiter.measure_encoder):
        with pytest.raises(ValueError, match=match):
            fn(**kwargs)


def test_bad_counts_and_addresses_rejected():
    with pytest.raises(ValueError, match="k must be"):
        digital_counters.measure_kcounter("tt", VDD_V, k=0)
    with pytest.raises(ValueError, match="k must be"):
        digital_counters.measure_kcounter("tt", VDD_V, k=32)
    with pytest.raises(ValueError, match="address"):
        digital_arbiter.measure_arb_tree("tt", VDD_V, address=256)
    with pytest.raises(ValueError, match="t_clk_s"):
        digital_counters.measure_ramp_counter("tt", VDD_V, t_clk_s=math.inf)
    with pytest.raises(ValueError, match="pitch_m"):
        digital_arbiter.measure_encoder("tt", VDD_V, pitch_m=-1.0)
