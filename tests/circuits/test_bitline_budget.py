"""The 128-step designs' bitline budget in real ngspice (circuits/bitline_budget.py).

The physics the ``topkima-65nm-ramp128-wideport`` preset rests on: the 448-row bitline of
``topkima-65nm-ramp128-cells4x`` halves the volts per unit and the ramp LSB of the 256-row preset
(more rows and wider drains, the same cell current); the wideport read stack (W/L 1/3 instead of 1/8)
brings the LSB back to the preset's, and its largest window (96 calibration rows × 6 units, and the
128 × 4-unit ramp) still leaves the bitline above the comparator's lowest characterised common mode.
Bounds are the physics' (a factor of about two, the 32-step preset's LSB within 15 %), not figures
read off this code. Three transients, ~1 s.
"""
from __future__ import annotations

import pytest

from topkima.circuits.bitline_budget import bitline_budget
from topkima.circuits.design import load_design


@pytest.fixture(scope="module")
def budgets():
    return {name: bitline_budget(load_design(name))
            for name in ("topkima-65nm", "topkima-65nm-ramp128-cells4x", "topkima-65nm-ramp128-wideport")}


def test_the_wideport_preset_loads_with_its_design_rules_kept():
    d = load_design("topkima-65nm-ramp128-wideport")   # load_design applies circuits/design_rules.py
    assert (d.geometry.n_ramp_rows, d.geometry.n_cal_rows, d.geometry.n_mac_rows) == (128, 96, 192)
    assert d.sizes.read_port.w_m / d.sizes.read_port.l_m == pytest.approx(1 / 3)
    # the clocks are the preset's: the LSB is restored by the cell, not by a slower ramp
    assert d.timing == load_design("topkima-65nm").timing


def test_the_tall_bitline_halves_the_lsb_and_the_wide_read_port_restores_it(budgets):
    preset, cells4x, wide = (budgets[n] for n in ("topkima-65nm", "topkima-65nm-ramp128-cells4x",
                                                   "topkima-65nm-ramp128-wideport"))
    for b in budgets.values():
        # the pulse's charge and the curve's slope agree: a 4-unit pulse is about 4 units of the curve
        assert b["lsb_v"] == pytest.approx(b["ramp_pulse_units"] * b["v_unit_top_v"], rel=0.1)
    assert 0.4 < cells4x["lsb_v"] / preset["lsb_v"] < 0.6
    assert 1.7 < wide["lsb_v"] / cells4x["lsb_v"] < 2.3
    assert wide["lsb_v"] == pytest.approx(preset["lsb_v"], rel=0.15)


def test_the_wideport_windows_keep_the_bitline_in_the_comparators_range(budgets):
    wide = budgets["topkima-65nm-ramp128-wideport"]
    assert (wide["window_top_units"], wide["full_ramp_units"]) == (96 * 6, 128 * 4)
    assert wide["v_at_window_top_v"] > wide["v_cm_min_v"]
    assert wide["v_at_full_ramp_v"] > wide["v_cm_min_v"]
    # with 128 calibration rows (cells4x's 768-unit top) the same cell would not keep it
    over = bitline_budget(load_design("topkima-65nm-ramp128-wideport").changed("geometry.n_cal_rows", 128))
    assert over["v_at_window_top_v"] < over["v_cm_min_v"]
