"""A design's replica-row counts (geometry.n_ramp_rows, n_cal_rows) reach every testbench.

A 65 nm design with 64 ramp rows and 64 calibration rows (a 6-bit ramp, issue 14's longer ramp)
writes a netlist for every job kind of its plan, with a 320-row bitline ladder; its 6-bit
ramp-cycle counter counts and wraps in ngspice; and one column conversion in ngspice with a MAC
of 200 units fires early enough to give a code above 31 (the 5-bit ramp's ceiling).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from topkima.circuits import column as col
from topkima.circuits import timing as tm
from topkima.circuits.corners import Supplies, corner
from topkima.circuits.design import COLUMN_FIELDS, DesignError, default_design


def _ramp64():
    return (default_design().changed("geometry.n_cal_rows", 64).changed("geometry.n_ramp_rows", 64)
            .changed("adc.n_cal", 64))


def test_the_ramp_rows_are_a_power_of_two_the_counter_can_count():
    with pytest.raises(DesignError, match=r"geometry\.n_ramp_rows: .*choose one of 8, 16, 32, 64, 128 .* got 48"):
        default_design().changed("geometry.n_ramp_rows", 48)
    with pytest.raises(DesignError, match=r"geometry\.q_max: .*cannot change it yet .*5-bit"):
        default_design().changed("geometry.q_max", 15)
    d = _ramp64()
    assert tm.of_design(d).n_ramp_steps == 64 and tm.payload(d) is not None
    assert d.values(COLUMN_FIELDS)["geometry.n_ramp_rows"] == 64


def test_a_64_row_ramp_design_writes_every_netlist_and_a_taller_bitline():
    d = _ramp64()
    rows = col.Rows.of(d)
    assert (rows.n_rows, rows.cal_row0, rows.mac_row0) == (320, 64, 128)
    draws = col.ColumnDraws.draw(np.random.default_rng(1), design=d)
    assert draws.cal_dvt_v.shape == (64, 2) and draws.ramp_dvt_v.shape == (64, 2)
    assert col.ColumnDraws.from_json(draws.to_json(), d).ramp_dvt_v.shape == (64, 2)
    with pytest.raises(ValueError, match=r"cal_dvt_v' must be finite with shape \(32, 2\), got \(64, 2\)"):
        col.ColumnDraws.from_json(draws.to_json())      # 64-row draws are not a 65 nm preset column's
    conv = col.ColumnConversion(tuple([1] * 64), tuple([2] * 64), n_cal=64, n_cal_rows=64)
    with pytest.raises(ValueError, match=r"n_cal must be an integer in 0\.\.32, got 64"):
        col.ColumnConversion(conv.keys, conv.inputs, n_cal=64)      # the 65 nm preset's 32 rows
    with tm.using(tm.payload(d)):
        text = col.column_netlist(conv, corner=corner("tt"), supplies=Supplies.from_design(d), draws=draws, design=d)
    # the ladder: per-row wire C on all 320 rows of each bitline; the 64 ramp and 64 calibration cells
    assert len(re.findall(r"^cl\d+ rbl_l\d+ 0 ", text, re.M)) == 320 and "rbl_r319" in text
    assert len(re.findall(r"^vwl(\d+) ", text, re.M)) == 64 + 64 + 64 * 3
    # idle replica ports load the opposite bitline (their drain junctions): 64 + 64 on RBL_L with storage 0
    assert re.search(r"^xidle_l0 rbl_l160 0 0 0 readport ", text, re.M)
    with pytest.raises(ValueError, match=r"n_cal must be an integer in 0\.\.32 \(the design's calibration rows\)"):
        col.column_netlist(conv, corner=corner("tt"), supplies=Supplies.from_design(default_design()))


class _Captured(Exception):
    pass


def _first_netlists(design) -> dict[str, str]:
    """``{label: netlist}``: the first netlist of each job kind and corner of the design's quick plan,
    written by the job itself in this process with ngspice replaced by a recorder."""
    from unittest import mock
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits import digital_arbiter, digital_counters, spice
    from topkima.circuits.jobs import run_job
    from topkima.circuits.settings import CalSettings

    def stop(netlist, *args, **kwargs):
        raise _Captured(netlist)

    seen, out = set(), {}
    with mock.patch.object(spice, "simulate", stop), mock.patch.object(digital_arbiter, "simulate", stop), \
            mock.patch.object(digital_counters, "simulate", stop):
        for jobs in plan_all(CalSettings(quick=True, design=design)).values():
            for job in jobs:
                kind = (job.fn, job.kwargs.get("corner_name"))
                if kind not in seen:
                    seen.add(kind)
                    with pytest.raises(_Captured) as cap:
                        run_job(job)
                    out[job.label] = cap.value.args[0]
    return out


def test_every_job_kind_of_the_64_row_design_writes_its_netlist():
    base, got = _first_netlists(default_design()), _first_netlists(_ramp64())
    assert set(got) == set(base)
    changed = {label for label in got if got[label] != base[label]}
    # what the ramp's length reaches: the column and ramp benches (taller bitline, 64 steps), the ramp
    # timing generator (64-row register), the ramp counter (6 bits), the in-situ comparator runs (their
    # conversions are longer); the arbiter, encoder, k-counter and isolated comparator do not change
    for label in ("discharge_n16", "ramp_pre000", "timing_chain_tt", "digital/tt/ramp_counter"):
        assert label in changed, label
    assert not {label for label in changed if re.search(r"arb_|encoder|kcounter", label)}
    assert "rbl_l319" in got["discharge_n16"] and "rbl_l255" in base["discharge_n16"]
    assert "rbl_l256" not in base["discharge_n16"]
    assert "xcntf5 " in got["digital/tt/ramp_counter"] and " cnt5" in base["digital/tt/ramp_counter"]
    # the chain bench's far row is the 64th
    assert "tk63" in got["timing_chain_tt"] and "tk31" not in got["timing_chain_tt"]


def test_a_6_bit_ramp_counter_counts_and_wraps_in_ngspice():
    from topkima.circuits.digital_counters import counter_bits, measure_ramp_counter
    d = _ramp64()
    with tm.using(tm.payload(d)):
        assert counter_bits() == 6
        r = measure_ramp_counter("tt", d.supplies.v_digital_v)
    assert r["bits"] == 6 and r["counts_ok"] and r["wraps_ok"]
    assert r["codes"] == list(range(64)) + [0, 1]   # after 0 … 65 clock edges
    assert 0 < r["t_clk_q_s"] < 1e-9 and r["e_dyn_per_count_j"] > 0


def test_a_64_step_column_conversion_gives_a_code_above_31_in_ngspice():
    """Real ngspice (~20-40 s): 64 calibration cells x 4 units start the 64-step ramp 256 units up, so
    a MAC of 200 units (5 elements of key 4 x input 10) fires near cycle 13: code 64 - 13 = 51,
    about MAC / 4 as the ideal ramp gives; a 5-bit ramp could not read above 31."""
    from topkima.circuits.column_measure import measure_conversion
    d = _ramp64()
    keys, inputs = [4] * 5 + [0] * 59, [10] * 5 + [0] * 59
    with tm.using(tm.payload(d)):
        r = measure_conversion("tt", Supplies.from_design(d).as_dict(), keys, inputs, 64, 4, 4,
                               design_fields=d.values(COLUMN_FIELDS))
    assert r["mac_units"] == 200 and len(r["v_rbl_l_at_sa_clk_v"]) == 64
    assert r["code"] > 31 and abs(r["code"] - 200 / 4) <= 4
