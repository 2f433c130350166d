"""The comparator's in-column threshold (artefact ``comparator.in_column``, topkima calibrate-in-column):
the model's threshold term against the SPICE measurements it comes from, and what it does on the
fitting set (calibration/fit_conversions.json; never a held-out set)."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.golden import compare, load_golden
from topkima.behavioral.macro.devices import sa_offsets
from topkima.behavioral.params import SA_MIRROR_DEVICES, in_column_threshold, params_from_calibration
from topkima.calibration import Calibration, load_calibration
from topkima.calibration.artefact import ArtefactError

ROOT = Path(__file__).resolve().parents[2]
FIT_SET = ROOT / "calibration" / "fit_conversions.json"


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


def _piecewise(vcm_grid, values, cm):
    """The model's offset between its characterised common modes (ends extrapolated), written out."""
    g = np.asarray(vcm_grid)
    seg = min(max(int(np.searchsorted(g, cm)) - 1, 0), g.size - 2)
    t = (cm - g[seg]) / (g[seg + 1] - g[seg])
    return values[seg] + t * (values[seg + 1] - values[seg])


def test_the_model_threshold_reproduces_every_spice_in_column_measurement(cal):
    # the SPICE runs: the nominal latch on a grid of decision cycles and common modes, and single
    # devices shifted ±2 σ decided in the base run's cycle; thresholds to ±5 µV
    ic = cal.comparator["in_column"]
    p = params_from_calibration(cal)
    model = {}
    for run in ic["runs"]:
        dvt = np.array([[run["sa_dvt_v"].get(name, 0.0) for name in p.sa_devices]])
        model[run["label"]] = _piecewise(p.sa_vcm_v, sa_offsets(p, dvt)[0], run["vcm_v"]) - run["threshold_v"]
    nominal = [label for label in model if label == "none" or label.startswith("grid/")]
    assert len(nominal) == ic["nominal_shift"]["n_runs"] >= 18
    # every nominal run, whatever its cycle (2 … 30) and common mode (0.25 … 0.34 V), within 10 µV
    assert max(abs(model[label]) for label in nominal) < 10e-6
    for dev in ic["sensitivity_v_per_v"]:
        up, down = model[f"{dev}+"], model[f"{dev}-"]
        # the linear term is matched both ways …
        assert up - down == pytest.approx(0.0, abs=15e-6), dev
        # … what is left is the threshold's curvature in a 2 σ shift, the same sign both ways
        # (60 µV for mnp: 15 µV at 1 σ), which the linear model leaves out
        assert abs(up) < 70e-6 and abs(down) < 70e-6, dev


def test_the_threshold_does_not_depend_on_the_decision_cycle_but_on_the_common_mode(cal):
    # SPICE: at each common mode of the grid, the nominal threshold over decision cycles 2 … 30
    # (1 … 29 earlier "not fired" decisions) spans a few µV; over the common mode it moves ~1 mV/V
    ic = cal.comparator["in_column"]
    rows = {}
    for run in ic["runs"]:
        if run["label"].startswith("grid/") or run["label"] == "none":
            rows.setdefault(run["n_units_r"], []).append(run)
    assert len(rows) == 3 and all(len(r) == 6 for r in rows.values())
    for runs in rows.values():
        assert {r["firing_cycle"] for r in runs} == {2, 5, 9, 16, 23, 30}
        assert np.ptp([r["threshold_v"] for r in runs]) < 12e-6
    plane = ic["nominal_shift"]
    assert abs(plane["per_cycle_v"]) * 28 < 5e-6 and plane["residual_rms_v"] < 5e-6
    assert 0.5e-3 < plane["per_v"] < 2e-3


def test_without_the_in_column_term_the_ideal_source_offset_was_off_in_the_column(cal):
    # the evidence the term stands on: the ideal-source linear model misses the in-column thresholds
    data = copy.deepcopy(cal.data)
    del data["comparator"]["in_column"], data["comparator"]["in_column_devices"]   # the devices extend it
    p0 = params_from_calibration(Calibration(data))
    errors = []
    for run in cal.comparator["in_column"]["runs"]:
        dvt = np.array([[run["sa_dvt_v"].get(name, 0.0) for name in p0.sa_devices]])
        errors.append(_piecewise(p0.sa_vcm_v, sa_offsets(p0, dvt)[0], run["vcm_v"]) - run["threshold_v"])
    assert np.max(np.abs(errors)) > 100e-6


def test_mirror_devices_act_with_the_opposite_sign(cal):
    p = params_from_calibration(cal)
    lin = cal.comparator["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    sens = np.asarray(lin["sensitivity_v_per_v"])[order]
    cm0 = cal.comparator["in_column"]["vcm_v"]
    for dev, s_col in cal.comparator["in_column"]["sensitivity_v_per_v"].items():
        mirror = p.sa_devices.index(SA_MIRROR_DEVICES[dev])
        expected = -s_col - np.interp(cm0, p.sa_vcm_v, sens[:, mirror])
        assert p.sa_in_column_extra_per_v[mirror] == pytest.approx(expected)


def test_an_artefact_without_the_field_keeps_the_ideal_source_offset(cal):
    data = copy.deepcopy(cal.data)
    del data["comparator"]["in_column"], data["comparator"]["in_column_devices"]   # the devices extend it
    cal = Calibration(data)
    assert in_column_threshold(cal.comparator) == {}
    p = params_from_calibration(cal)
    dvt = np.random.default_rng(1).normal(0, 0.01, (3, len(p.sa_devices)))
    np.testing.assert_array_equal(sa_offsets(p, dvt), p.sa_intercept_v[None, :] + dvt @ p.sa_sensitivity.T)


@pytest.mark.parametrize("change, field", [
    (lambda ic: ic.update(threshold_nominal_v=float("nan")), "threshold_nominal_v"),
    (lambda ic: ic.pop("vcm_v"), "vcm_v"),
    (lambda ic: ic.update(sensitivity_v_per_v={"m_unknown": 0.1}), "sensitivity_v_per_v"),
    (lambda ic: ic.update(sensitivity_v_per_v={"mnp": "x"}), "sensitivity_v_per_v"),
    (lambda ic: ic["nominal_shift"].update(per_v=float("inf")), "nominal_shift.per_v"),
    (lambda ic: ic["nominal_shift"].pop("shift_v"), "nominal_shift.shift_v"),
])
def test_a_bad_in_column_field_is_refused_naming_it(cal, change, field):
    data = copy.deepcopy(cal.data)
    change(data["comparator"]["in_column"])
    with pytest.raises(ArtefactError, match=f"comparator.in_column.{field}"):
        Calibration(data)


def test_the_term_improves_the_fitting_set(cal):
    # the fitting set, not a held-out one: agreement here is not evidence of fidelity (see the held-out sets)
    fit = load_golden(FIT_SET)
    assert fit["set"] == "fit" and fit["held_out"] is False
    data = copy.deepcopy(cal.data)
    del data["comparator"]["in_column"], data["comparator"]["in_column_devices"]   # the devices extend it
    before = compare(TopkimaMacro(Calibration(data)), fit).regions()["in_range"]
    after = compare(TopkimaMacro(cal), fit).regions()["in_range"]
    assert after["n"] == before["n"] >= 80
    assert after["exact_pct"] >= 95.0 > before["exact_pct"]
    assert after["within_1_lsb_pct"] == 100.0


def test_the_artefact_records_how_the_field_was_made(cal):
    ic = cal.comparator["in_column"]
    prov = ic["provenance"]
    assert "calibrate-in-column" in prov["command_line"] and prov["n_simulation_jobs"] == len(ic["runs"])
    assert json.dumps(ic["method"]).count("bisection") == 1
