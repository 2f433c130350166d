"""A design's array width (geometry.n_columns) and key elements (geometry.n_elements) reach every bench.

A 65 nm design with 64 columns and 16 key elements per column: its plan asks for a 6-level arbiter
tree, a 5-level encoder path, a 64-column ramp wordline and 48-MAC-row columns. In real ngspice its
arbiter tree grants the last leaf (63) and the first, its whole encoder writes the address of each
granted column, and a column conversion of its 112-row column fires, earlier for a larger MAC. The
65 nm preset's netlists are unchanged (tests/circuits/test_technology.py holds their SHA-256).
"""
from __future__ import annotations

import re

import pytest

from topkima.circuits import column as col
from topkima.circuits import digital, digital_arbiter, ramp_timing, ramp_widths
from topkima.circuits.corners import Supplies, corner
from topkima.circuits.design import COLUMN_FIELDS, DesignError, default_design
from topkima.circuits.settings import CalSettings

VDD_V = 0.8


def _small():
    return default_design().changed("geometry.n_columns", 64).changed("geometry.n_elements", 16)


def test_the_width_and_elements_are_design_fields_with_rules():
    d = _small()
    assert (d.geometry.n_columns, d.geometry.n_elements, d.geometry.n_mac_rows, d.geometry.n_rows) == (64, 16, 48, 112)
    with pytest.raises(DesignError, match=r"geometry\.n_columns: .*power of two.*got 96"):
        default_design().changed("geometry.n_columns", 96)
    with pytest.raises(DesignError, match=r"geometry\.n_elements: .*1 … 256.*got 257"):
        default_design().changed("geometry.n_elements", 257)
    with pytest.raises(DesignError, match=r"geometry\.pair_scales: .*cannot change it yet"):
        default_design().changed("geometry.pair_scales", [1, 2])
    assert (digital.tree_levels(256), digital.encoder_levels(256), digital.mean_address_ones(256)) == \
        (digital.TREE_LEVELS, digital.ENCODER_LEVELS, digital.MEAN_ADDRESS_ONES)
    assert (digital.tree_levels(64), digital.encoder_levels(64)) == (6, 5)


def test_the_plan_of_a_64_column_16_element_design_asks_for_its_geometry():
    from topkima.calibration.calibrate import plan_all
    d = _small()
    plans = plan_all(CalSettings(quick=False, design=d))
    trees = [j for j in plans["digital"] if "arb_tree" in j.label]
    assert {j.kwargs["levels"] for j in trees} == {6} and {j.kwargs["address"] for j in trees} == {0, 63}
    assert {j.kwargs["levels"] for j in plans["digital"] if j.label.endswith("/encoder")} == {5}
    assert {j.kwargs["n_columns"] for j in plans["ramp"] if j.label.startswith("timing_")} == {64}
    column_jobs = [j for j in plans["column"] if "keys" in j.kwargs]
    assert column_jobs and all(len(j.kwargs["keys"]) == len(j.kwargs["inputs"]) == 16 for j in column_jobs)
    assert all(j.kwargs["design_fields"]["geometry.n_elements"] == 16 for j in plans["column"])
    # the 65 nm preset's plan: 8 levels, 7, 256 columns, 64 elements
    ref = plan_all(CalSettings(quick=False))
    assert {j.kwargs["levels"] for j in ref["digital"] if "arb_tree" in j.label} == {8}
    assert {j.kwargs["address"] for j in ref["digital"] if "arb_tree" in j.label} == {0, 255}
    assert {j.kwargs["n_columns"] for j in ref["ramp"] if j.label.startswith("timing_")} == {256}


def test_the_wordline_and_the_column_netlists_follow_the_geometry():
    d = _small()
    sup = Supplies.from_design(d)
    text, _ = ramp_widths.widths_netlist("tt", sup.as_dict(), (4,), n_columns=64)
    ref, _ = ramp_widths.widths_netlist("tt", sup.as_dict(), (4,))
    # four sections of 16 columns (64 at 256), a quarter of the 256-column wire
    assert re.search(r"^maan4_1 .* m=16$", text, re.M) and re.search(r"^maan4_1 .* m=64$", ref, re.M)
    assert not re.search(r"^maan4_3 ", text, re.M)          # centre-driven: two sections per half
    r64, c64 = ramp_timing.wordline_wire(64)
    assert (r64 * 4, c64 * 4) == pytest.approx(ramp_timing.wordline_wire(256))
    with pytest.raises(ValueError, match="n_columns must be an integer multiple of 4 of at least 16"):
        ramp_timing.section_columns(8)
    conv = col.ColumnConversion(tuple([1] * 16), tuple([2] * 16), n_elements=16)
    net = col.column_netlist(conv, corner=corner("tt"), supplies=sup, design=d)
    assert len(re.findall(r"^cl\d+ rbl_l\d+ 0 ", net, re.M)) == 112          # 32 + 32 + 48 rows
    assert len(re.findall(r"^vwl(\d+) ", net, re.M)) == 32 + 32 + 16 * 3
    with pytest.raises(ValueError, match=r"key levels must have 64 entries"):
        col.ColumnConversion(conv.keys, conv.inputs)                          # the preset's 64 elements
    with pytest.raises(ValueError, match=r"the design has 16 elements \(48 MAC rows\)"):
        col.column_netlist(col.ColumnConversion(tuple([1] * 64), tuple([2] * 64)), corner=corner("tt"),
                           supplies=sup, design=d)


def test_a_64_input_arbiter_tree_grants_its_first_and_last_leaf_in_ngspice():
    for address in (0, 63):
        r = digital_arbiter.measure_arb_tree("tt", VDD_V, address, levels=6)
        assert r["grant_reaches_leaf_ok"] and r["n_inputs"] == 64 and len(r["t_req_up_per_level_s"]) == 6
        assert 0 < r["t_grant_tree_s"] < 3e-9
    enc = digital_arbiter.measure_encoder("tt", VDD_V, levels=5)
    assert enc["enc8_ok"] and 0 < enc["t_enc_s"] < 1e-9
    assert enc["e_per_encode_j"] == pytest.approx(3 * enc["e_per_bit_event_j"])   # 6 address bits, half of them 1


def test_a_64_column_encoder_writes_each_granted_address_in_ngspice():
    addresses = [0, 1, 21, 42, 63, 32]        # every bit alone and together; 0 between grants
    r = digital_arbiter.measure_encoder_function("ss", VDD_V, 64, addresses)
    assert r["encoded"] == addresses and r["idle"] == [0] * len(addresses) and r["encodes_ok"]


def test_a_16_element_column_converts_in_ngspice_larger_mac_first():
    from topkima.circuits.column_measure import measure_conversion
    d = _small()
    sup = Supplies.from_design(d).as_dict()
    codes = {}
    for mac in (16, 48):
        keys, inputs = [0] * 16, [0] * 16
        for e in range(mac // 8):              # key 4 (the x4 pair) at input 2: 8 units each
            keys[e], inputs[e] = 4, 2
        r = measure_conversion("tt", sup, keys, inputs, 32, 4, 4, design_fields=d.values(COLUMN_FIELDS))
        assert r["mac_units"] == mac and r["firing_cycle"] is not None
        assert len(r["v_rbl_l_at_sa_clk_v"]) == 32
        codes[mac] = r["code"]
    assert 0 < codes[16] < codes[48]
