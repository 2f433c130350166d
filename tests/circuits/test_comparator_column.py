"""The in-column threshold testbench (circuits/comparator_column.py) in real ngspice, against the
measurement stored in the committed artefact (comparator.in_column)."""
import pytest

from topkima.calibration import load_calibration
from topkima.circuits import comparator_column as cc
from topkima.circuits.column import ColumnConversion, column_netlist
from topkima.circuits.column_measure import corner_and_supplies
from topkima.circuits.design import default_design
from topkima.circuits.settings import CalSettings


@pytest.mark.slow
def test_the_decision_flips_inside_the_stored_bracket():
    # two column transients (real sense amplifier) at the two ends of the stored bisection bracket
    stored = next(r for r in load_calibration().comparator["in_column"]["runs"] if r["label"] == "none")
    corner, sup = corner_and_supplies("tt", CalSettings().supplies.as_dict())
    j = stored["firing_cycle"]
    i_lo, i_hi = stored["i_shift_bracket_a"]
    fired_lo, diff_lo, _ = cc._trial({}, i_lo, j + 1, corner, sup, default_design())
    fired_hi, diff_hi, _ = cc._trial({}, i_hi, j + 1, corner, sup, default_design())
    assert fired_lo == j and (fired_hi is None or fired_hi > j)
    assert diff_lo[j - 1] == pytest.approx(stored["bracket_v"][0], abs=2e-6)
    assert diff_hi[j - 1] == pytest.approx(stored["bracket_v"][1], abs=2e-6)
    # the threshold sits below the ideal-source offset of a nominal latch (≈ +5 µV): the in-column shift
    assert max(diff_lo[j - 1], diff_hi[j - 1]) < -100e-6


def test_an_unknown_device_is_refused_before_any_simulation():
    with pytest.raises(ValueError, match="unknown comparator device 'mxx'"):
        cc.measure_column_threshold("tt", CalSettings().supplies.as_dict(), {"mxx": 0.01})


def test_the_plan_measures_the_nominal_grid_and_each_device_both_ways_in_one_cycle():
    jobs = cc.plan(CalSettings())
    assert [j.kwargs["sa_dvt_v"] for j in jobs] == [shifts for _, shifts, _ in cc.cases()]
    n_grid = len(cc.GRID_CYCLES) * len(cc.GRID_N_UNITS)
    assert len(jobs) == n_grid + 2 * len(cc.DEVICES) and len({j.key() for j in jobs}) == len(jobs)
    nominal = [(j.kwargs["n_units"], j.kwargs["cycle"]) for j in jobs if not j.kwargs["sa_dvt_v"]]
    assert sorted(nominal) == sorted((n, c) for n in cc.GRID_N_UNITS for c in cc.GRID_CYCLES)
    # every device run decides in the base pattern's cycle: its sensitivity is not mixed with a cycle count
    devices = [j for j in jobs if j.kwargs["sa_dvt_v"]]
    assert {(j.kwargs["n_units"], j.kwargs["cycle"]) for j in devices} == {(cc.BASE_N_UNITS, cc.BASE_CYCLE)}


@pytest.mark.parametrize("p_units, n_units", [(300, 204), (0, 0), (256, 130), (408, 275), (7, 16)])
def test_a_pattern_discharges_the_units_asked_for(p_units, n_units):
    inputs, keys = cc.pattern(p_units, n_units)
    assert ColumnConversion(keys, inputs).bitline_units() == (p_units, n_units)


def test_the_grid_patterns_cross_in_their_cycle_on_an_ideal_ramp():
    # ideal ramp: RBL_L gains 4 units per cycle, RBL_R holds the 128 calibration units
    for n in cc.GRID_N_UNITS:
        for cycle in cc.GRID_CYCLES:
            p_units, n_units = ColumnConversion(*reversed(cc.pattern_for(n, cycle))).bitline_units()
            first = next(j for j in range(1, 33) if p_units + 4 * j > n_units + 128)
            assert first == cycle and p_units + 4 * (cycle - 1) == n_units + 128   # level one cycle before
    with pytest.raises(ValueError, match="64 at most"):
        cc.pattern(2000, 0)
    with pytest.raises(ValueError, match="cycle must be in 1..32"):
        cc.measure_column_threshold("tt", CalSettings().supplies.as_dict(), {}, cycle=0)


def test_a_shortened_column_transient_is_validated():
    conv = ColumnConversion(cc.KEYS, cc.INPUTS)
    corner, sup = corner_and_supplies("tt", CalSettings().supplies.as_dict())
    short = column_netlist(conv, corner=corner, supplies=sup, tstop_s=100e-9)
    assert ".tran 1e-10 1.000000000e-07" in short or ".tran 1.000000000e-10 1.000000000e-07" in short
    with pytest.raises(ValueError, match="tstop_s"):
        column_netlist(conv, corner=corner, supplies=sup, tstop_s=float("nan"))
