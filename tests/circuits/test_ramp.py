"""Ramp generator in real ngspice: steps, LSB, linearity, calibration level, mismatch."""
import numpy as np
import pytest

from topkima.circuits import column as col
from topkima.circuits import column_measure as cm
from topkima.circuits import ramp
from topkima.circuits.corners import Supplies

SUP = Supplies().as_dict()


@pytest.fixture(scope="module")
def nominal():
    return ramp.ramp_metrics(ramp.measure_ramp("tt", SUP, 32, 4, 4))


def test_ramp_falls_one_even_step_per_clock(nominal):
    steps = np.asarray(nominal["steps_v"])
    assert steps.shape == (32,) and np.all(steps > 0)
    assert max(abs(x) for x in nominal["dnl_lsb"]) < 0.1      # nominal cells: no mismatch
    assert max(abs(x) for x in nominal["inl_lsb"]) < 0.5


def test_lsb_and_calibration_level_agree_with_the_discharge_curve(nominal):
    d = cm.measure_discharge("tt", SUP, 8, [], 40e-9)
    units, v = np.asarray(d["units"]), np.asarray(d["v_rbl_v"])
    dv_per_unit = (np.interp(40, units, v) - np.interp(140, units, v)) / 100
    assert nominal["lsb_v"] == pytest.approx(4 * dv_per_unit, rel=0.1)
    # 32 calibration cells × 4 units on RBL_R set the top of the range
    assert nominal["v_cal_step_v"] == pytest.approx(128 * dv_per_unit, rel=0.1)
    assert nominal["v_start_diff_v"] == pytest.approx(-nominal["v_cal_step_v"], abs=2e-3)


def test_replica_cell_mismatch_spreads_the_steps(nominal):
    draws = col.ColumnDraws.draw(np.random.default_rng(12)).to_json()
    mc = ramp.ramp_metrics(ramp.measure_ramp("tt", SUP, 32, 4, 4, draws=draws))
    rel = np.asarray(mc["steps_v"]) / np.asarray(nominal["steps_v"]) - 1
    assert 0.03 < rel.std(ddof=1) < 0.3
    assert max(abs(x) for x in mc["dnl_lsb"]) > max(abs(x) for x in nominal["dnl_lsb"])
