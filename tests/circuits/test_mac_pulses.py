"""The MAC pulses' charge in the MAC phase (artefact column.mac_pulses, topkima calibrate-mac-pulses) in
real ngspice: the stored runs replay, and on two vectors of no plan that bring about the same units onto
RBL_L as 144 short pulses or as 13 long ones, the model with the per-pulse term predicts SPICE's
difference between them far better than without it."""
from dataclasses import replace

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.calibration import load_calibration
from topkima.calibration.mac_pulses import bitline_pulses, leak_units, nominal_units, t_end_units
from topkima.circuits import mac_nominal
from topkima.circuits.column_measure import measure_mac
from topkima.circuits.settings import CalSettings

#: 48 elements q = +1 against key +7: 144 pulses of 1, 2 and 4 units, every one storing 1 on RBL_L
MANY_SHORT = ([1] * 48 + [0] * 16, [7] * 48 + [0] * 16)
#: 13 elements q = 12 (one 6) against key +2: 13 pulses of 24 (12) units storing 1 on RBL_L
FEW_LONG = ([12] * 12 + [6] + [0] * 51, [2] * 12 + [2] + [0] * 51)


def _supplies():
    return CalSettings().supplies.as_dict()


def test_the_plan_is_a_prefix_and_every_stored_run_replays_its_inputs():
    cal = load_calibration()
    runs = cal.column["mac_pulses"]["runs"]
    jobs = mac_nominal.plan(CalSettings(), len(runs))
    assert [j.kwargs["inputs"] for j in jobs] == [r["inputs"] for r in runs]
    assert [j.kwargs["keys"] for j in mac_nominal.plan(CalSettings(), 3)] == [r["keys"] for r in runs[:3]]


@pytest.mark.slow
def test_the_term_predicts_spice_many_short_against_few_long_pulses():
    cal = load_calibration()
    col = cal.column
    stored = cal.column["mac_pulses"]["runs"][0]
    again = measure_mac("tt", _supplies(), stored["keys"], stored["inputs"])
    assert again["v_rbl_l_v"] == pytest.approx(stored["v_rbl_l_v"], abs=2e-6)   # the bench replays
    curve = col["discharge_curve"]
    cu, cv = np.asarray(curve["units"]), np.asarray(curve["v_rbl_v"])
    macro = TopkimaMacro(cal)
    without = TopkimaMacro(cal)
    without.params = replace(without.params, mac_pulse_excess_units=None)
    err = {}
    for name, (q, k) in {"short": MANY_SHORT, "long": FEW_LONG}.items():
        (w1, w0), _ = bitline_pulses(q, k, col["geometry"]["pair_scales"])
        v_spice = measure_mac("tt", _supplies(), k, q)["v_rbl_l_v"]
        # SPICE's units on RBL_L: its level through the discharge curve, less the model's leakage
        u_spice = float(np.interp(-v_spice, -cv, cu)) - leak_units(col, k, nominal_units(col, w1, w0), t_end_units(col))
        for label, m in (("with", macro), ("without", without)):
            chip = m.nominal()
            kl = np.zeros((64, chip.n_cols), dtype=np.int64)
            kl[:, 0] = k
            u_model = chip.mac_units(np.array(q)[None, :], kl)[0][0, 0]
            err[name, label] = u_model - u_spice
    contrast = {label: err["short", label] - err["long", label] for label in ("with", "without")}
    # without the term the model takes ~2.5 units (1.4 mV) too much from the short pulses relative to the
    # long ones; with it, less than half of that is left (measured: 2.49 → 0.66 units)
    assert contrast["without"] > 1.5
    assert abs(contrast["with"]) < 0.5 * contrast["without"]
