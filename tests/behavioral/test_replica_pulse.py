"""The replica cells' pulsed-charge term (artefact column.replica_pulse, topkima calibrate-replica-pulse):
the model's factor against the SPICE runs it comes from and against the bench's independent Monte Carlo
check, and what it does to the error budget's calibration and ramp cells (a diagnosis set, never fitted)."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.golden_budget import error_budget
from topkima.behavioral.macro.devices import array_devices, draw_tile
from topkima.behavioral.params import params_from_calibration
from topkima.calibration import Calibration, load_calibration
from topkima.calibration.artefact import ArtefactError
from topkima.calibration.replica_pulse import fit_replica_pulse, phase_ratio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


def _without_field(cal):
    data = copy.deepcopy(cal.data)
    del data["column"]["replica_pulse"]
    return Calibration(data)


def _stored_ratios(section):
    """Each stored run's charge relative to the nominal run's, and its cells' shifts (from the runs alone)."""
    runs = {r["label"]: r for r in section["runs"]}
    q0 = runs["none"]["charge_units"]
    return ({k: r["charge_units"] / q0 for k, r in runs.items()},
            {k: np.asarray(r["cal_dvt_v"]) for k, r in runs.items()}, runs["none"])


def test_the_fit_reproduces_the_structured_runs_and_predicts_the_monte_carlo_ones(cal):
    section = cal.column["replica_pulse"]
    p = params_from_calibration(cal)
    ratio, shifts, none = _stored_ratios(section)
    v_per_unit = (none["v_before_v"] - none["v_after_v"]) / none["charge_units"]
    err_v = {}
    for label in ratio:
        a, s = shifts[label][:, 0], shifts[label][:, 1]
        # the model's per-cell factors, their mean against SPICE's phase charge (V on the ~66 mV drop)
        err_v[label] = (np.mean(p.replica_factor(a, s)) - ratio[label]) * none["charge_units"] * v_per_unit
        dc = (np.mean(p.current_factor(a, s)) - ratio[label]) * none["charge_units"] * v_per_unit
        err_v[label, "dc"] = dc
    structured = [k for k in ratio if not k.startswith("mc/") and k != "none"]
    mc = [k for k in ratio if k.startswith("mc/")]
    assert len(structured) == 8 and len(mc) >= 16
    # the five-term form leaves ≤ 15 µV on the runs it is fitted to (the ±2 σ balanced ones the most)
    assert max(abs(err_v[k]) for k in structured) < 20e-6
    # the Monte Carlo draws were not fitted: the pulse fit's error is small and unbiased, the DC fit's is not
    pulse, dc = np.array([err_v[k] for k in mc]), np.array([err_v[k, "dc"] for k in mc])
    assert np.sqrt(np.mean(pulse ** 2)) < 15e-6 and abs(pulse.mean()) < 5e-6
    assert np.sqrt(np.mean(dc ** 2)) > 3 * np.sqrt(np.mean(pulse ** 2)) and dc.mean() < -10e-6
    assert section["mc_check"]["pulse_fit"]["rms_error_v"] == pytest.approx(np.sqrt(np.mean(pulse ** 2)), rel=0.02)


def test_the_least_squares_recovers_known_coefficients():
    rng = np.random.default_rng(3)
    truth = np.array([-9.5, -5.2, -30.0, -40.0, 50.0])
    shifts = {f"r{i}": rng.normal(0, 0.02, (32, 2)) for i in range(12)}
    ratios = {k: phase_ratio(truth, v) for k, v in shifts.items()}
    coef, resid = fit_replica_pulse(ratios, shifts, start=[-9, -5.6, -36, -35, 45])
    np.testing.assert_allclose(coef, truth, rtol=1e-4)
    assert resid < 1e-7


def test_replica_cells_take_the_pulse_fit_and_read_ports_keep_the_dc_fit(cal):
    p = params_from_calibration(cal)
    draws = draw_tile(p, np.random.default_rng(5), 4, 192)
    dev = array_devices(p, 4, 192, draws)
    a, b, c, d, e = cal.column["replica_pulse"]["log_ratio_fit"]
    for col in range(4):
        for i in range(32):
            da, ds = draws.cal_dvt_v[col, i]
            assert dev.m_cal[col, i] == pytest.approx(np.exp(a * da + b * ds + c * da * da + d * ds * ds + e * da * ds))
            da, ds = draws.ramp_dvt_v[col, i]
            assert dev.m_ramp[col, i] == pytest.approx(np.exp(a * da + b * ds + c * da * da + d * ds * ds + e * da * ds))
    np.testing.assert_allclose(dev.m_stack[5, 2, 1], p.current_factor(*draws.mac_dvt_v[1, 5, 2]), rtol=1e-6)
    p0 = params_from_calibration(_without_field(cal))
    assert p0.replica_log_ratio_fit is None
    np.testing.assert_array_equal(array_devices(p0, 4, 192, draws).m_cal,
                                  p0.current_factor(draws.cal_dvt_v[..., 0], draws.cal_dvt_v[..., 1]))


@pytest.mark.parametrize("change", [lambda rp: rp.update(log_ratio_fit=[1.0, 2.0]),
                                    lambda rp: rp.update(log_ratio_fit=[1.0, 2.0, float("nan"), 0.0, 0.0]),
                                    lambda rp: rp.pop("log_ratio_fit")])
def test_a_bad_replica_pulse_field_is_refused_naming_it(cal, change):
    data = copy.deepcopy(cal.data)
    change(data["column"]["replica_pulse"])
    with pytest.raises(ArtefactError, match="column.replica_pulse.log_ratio_fit"):
        Calibration(data)


def test_the_term_removes_the_replica_cells_share_of_the_error_budget(cal):
    # the error-budget set is a diagnosis (never fitted): its calibration cells' added error had a mean of
    # +0.05 mV (the model's calibration discharge short) that a DC current factor cannot give
    doc = json.loads((ROOT / "tests" / "golden" / "error_budget_conversions.json").read_text())
    before = error_budget(TopkimaMacro(_without_field(cal)), doc)["added_by"]
    after = error_budget(TopkimaMacro(cal), doc)["added_by"]
    for group in ("cal", "ramp"):
        assert after[group]["rms_mv"] < 0.5 * before[group]["rms_mv"], group
        assert abs(after[group]["mean_mv"]) < 0.5 * abs(before[group]["mean_mv"]), group
    assert after["mac"] == before["mac"] and after["sa"] == before["sa"]   # other groups untouched
