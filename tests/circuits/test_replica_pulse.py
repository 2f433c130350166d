"""The replica-pulse bench (circuits/replica_pulse.py) in real ngspice: the stored runs replay, and the
model's pulsed-charge fit (artefact column.replica_pulse) predicts a fresh Monte Carlo draw of the 32
calibration cells that neither the fit nor its stored check has seen."""
import numpy as np
import pytest

from topkima.behavioral.params import params_from_calibration
from topkima.calibration import load_calibration
from topkima.calibration.replica_pulse import charge_units
from topkima.circuits import replica_pulse as rp
from topkima.circuits.column import ColumnDraws
from topkima.circuits.design import COLUMN_FIELDS
from topkima.circuits.settings import CalSettings

#: a seed stream of this test's own (the bench's Monte Carlo check uses rp.MC_SEED)
FRESH_SEED = 170_917


def _run(shifts):
    s = CalSettings()
    return rp.measure_calibration_pulse("tt", s.supplies.as_dict(), np.asarray(shifts).tolist(),
                                        s.design.values(COLUMN_FIELDS))


@pytest.mark.slow
def test_a_fresh_draw_is_predicted_by_the_pulse_fit_better_than_by_the_dc_current_fit():
    cal = load_calibration()
    p = params_from_calibration(cal)
    nominal = _run(np.zeros((32, 2)))
    stored = next(r for r in cal.column["replica_pulse"]["runs"] if r["label"] == "none")
    assert nominal["v_after_v"] == pytest.approx(stored["v_after_v"], abs=2e-6)   # the bench replays
    q0 = charge_units(cal, nominal)
    v_per_unit = (nominal["v_before_v"] - nominal["v_after_v"]) / q0
    err_pulse, err_dc = [], []
    rng = np.random.default_rng(FRESH_SEED)
    for _ in range(3):
        shifts = ColumnDraws.draw(rng, design=CalSettings().design).cal_dvt_v
        ratio = charge_units(cal, _run(shifts)) / q0
        # slow, obvious reference: each cell's factor written out, their mean
        pulse = np.mean([p.replica_factor(a, s) for a, s in shifts])
        dc = np.mean([p.current_factor(a, s) for a, s in shifts])
        err_pulse.append((pulse - ratio) * q0 * v_per_unit)
        err_dc.append((dc - ratio) * q0 * v_per_unit)
    # the calibration drop (~66 mV) to 25 µV with the pulse fit on every draw
    assert np.max(np.abs(err_pulse)) < 25e-6
    assert np.sqrt(np.mean(np.square(err_pulse))) < np.sqrt(np.mean(np.square(err_dc)))


def test_the_plan_balances_its_curvature_runs_and_draws_its_check_from_its_own_stream():
    cases = {label: shifts for label, shifts, _ in rp.cases()}
    widths = {label: w for label, _, w in rp.cases()}
    assert {w for w in widths.values() if w is not None} == set(rp.EDGE_WIDTHS)
    assert all(widths[f"w{w}/{k}"] == w for w in rp.EDGE_WIDTHS for k in ("none", "a+", "a-", "s+", "s-"))
    for label in ("bal/a", "bal/s", "bal/as", "bal/a-s"):
        assert np.allclose(cases[label].sum(axis=0), 0.0) and np.abs(cases[label]).max() > 0.015
    for label in ("a+", "a-", "s+", "s-"):
        assert np.ptp(cases[label], axis=0).max() == 0.0   # every cell alike
    mc = np.array([v for k, v in cases.items() if k.startswith("mc/")])
    assert mc.shape == (rp.N_MC, 32, 2) and 0.008 < mc.std() < 0.013
    jobs = rp.plan(CalSettings())
    assert len({j.key() for j in jobs}) == len(jobs) == len(cases)
    assert {j.kwargs["t_cal_units"] for j in jobs} == {4, *rp.EDGE_WIDTHS}
    with pytest.raises(ValueError, match="cal_dvt_v must be"):
        _run(np.zeros((31, 2)))
    with pytest.raises(ValueError, match="cal_dvt_v must be"):
        _run(np.full((32, 2), np.nan))
