"""The bitlines' droop against their level in real ngspice (circuits/bitline_droop.py) and its fit
(calibration/bitline_droop.py): the column's idle stacks leak faster at a higher bitline level."""
import numpy as np
import pytest

from topkima.calibration import load_calibration
from topkima.calibration.artefact import ArtefactError
from topkima.calibration.bitline_droop import fit_droop
from topkima.circuits import bitline_droop as bd
from topkima.circuits import column_measure as cm
from topkima.circuits.corners import Supplies

SUP = Supplies().as_dict()
T_UNIT_S = 0.5e-9


@pytest.fixture(scope="module")
def runs():
    return [bd.measure_droop("tt", SUP, 0, 52), bd.measure_droop("tt", SUP, 300, 352)]


@pytest.fixture(scope="module")
def curve():
    col = load_calibration().column
    return np.asarray(col["discharge_curve"]["units"]), np.asarray(col["discharge_curve"]["v_rbl_v"])


def _records(runs, curve):
    """(mean level V, rate in curve units per PWM unit, stored-1 stacks) per bitline and run."""
    u, v = curve
    out = []
    for r in runs:
        t = np.asarray(r["t_after_mac_start_s"]) / T_UNIT_S
        for side in "lr":
            volts = np.asarray(r[f"v_rbl_{side}_v"])
            units = np.interp(-volts, -v, u)
            out.append((volts.mean(), (units[-1] - units[0]) / (t[-1] - t[0]), r["mac_stored_ones"] + 32))
    return out


def test_pre_discharge_reaches_the_levels_asked(runs, curve):
    u, v = curve
    for r in runs:
        for side in "lr":
            v0 = r[f"v_rbl_{side}_v"][0]
            # the MAC units put on the bitline, read back through the discharge curve (plus 4–7 units of
            # leakage, and the pulsed stacks storing 0's charge-share packets)
            pre = r[f"pre_units_{side}"]
            assert np.interp(-v0, -v, u) == pytest.approx(pre, abs=8 + 0.08 * pre)


def test_droop_is_faster_at_a_higher_level(runs, curve):
    rec = sorted(_records(runs, curve))
    levels, rates = [x[0] for x in rec], [x[1] for x in rec]
    assert levels[-1] > 0.49 and levels[0] < 0.33
    assert np.all(np.diff(rates) > 0)
    assert rates[-1] / rates[0] > 1.8        # 0.5 V against ~0.32 V: drain-induced barrier lowering


def test_droop_agrees_with_the_idle_stacks_dc_leakage(runs, curve):
    """The transient droop of the whole column against an independent SPICE measurement: the .op
    currents of one idle stack storing 1 / 0 at the same bitline level, summed over the column's stacks."""
    n_stacks = 2 * 64 * 3 + 64     # MAC stacks on one bitline + one replica port per calibration and ramp row
    for level, rate, n1 in _records(runs, curve):
        op = cm.measure_cell_currents("tt", SUP, [], [round(float(level), 4)])
        i_leak = n1 * op["i_leak_stored1_a"][0] + (n_stacks - n1) * op["i_leak_stored0_a"][0]
        assert rate == pytest.approx(i_leak / op["i_on_nominal_a"][0], rel=0.06)


def test_fit_gives_the_rate_relative_to_the_reference_level(runs, curve):
    fit = fit_droop(runs, *curve, T_UNIT_S, v_ref_v=0.4)
    v, rel = np.asarray(fit["v_rbl_v"]), np.asarray(fit["rate_rel"])
    assert np.all(np.diff(v) > 0) and np.all(np.diff(rel) > 0)
    assert np.interp(0.4, v, rel) == pytest.approx(1.0)
    assert fit["rate_at_v_ref_units_per_unit"] * rel[-1] == pytest.approx(fit["rate_units_per_unit"][-1])


def test_fit_refuses_levels_that_miss_the_reference(runs, curve):
    with pytest.raises(ArtefactError, match="reference level"):
        fit_droop(runs, *curve, T_UNIT_S, v_ref_v=0.6)


@pytest.mark.parametrize("units_l, units_r, what", [(50, 0, "multiples of 4"), (-4, 0, "multiples of 4"),
                                                    (4000, 4000, "do not fit")])
def test_pre_discharge_vectors_refuse_bad_levels(units_l, units_r, what):
    with pytest.raises(ValueError, match=what):
        bd.pre_discharge_vectors(units_l, units_r)
