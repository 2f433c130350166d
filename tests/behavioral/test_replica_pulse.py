"""The replica cells' pulsed-charge term and the pulses' edge charge (artefact column.replica_pulse, topkima
calibrate-replica-pulse): the model's terms against the SPICE runs they come from and against the bench's
independent Monte Carlo check, and what they do to the error budget's replica cells and MAC read stacks (a
diagnosis set, never fitted)."""
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
    structured = [k for k in ratio if "/" not in k.replace("bal/", "") and k != "none"]
    mc = [k for k in ratio if k.startswith("mc/")]
    assert len(structured) == 8 and len(mc) >= 16
    # the five-term form leaves ≤ 15 µV on the runs it is fitted to (the ±2 σ balanced ones the most)
    assert max(abs(err_v[k]) for k in structured) < 20e-6
    # the Monte Carlo draws were not fitted: the pulse fit's error is small and unbiased, the DC fit's is not
    pulse, dc = np.array([err_v[k] for k in mc]), np.array([err_v[k, "dc"] for k in mc])
    assert np.sqrt(np.mean(pulse ** 2)) < 15e-6 and abs(pulse.mean()) < 5e-6
    assert np.sqrt(np.mean(dc ** 2)) > 3 * np.sqrt(np.mean(pulse ** 2)) and dc.mean() < -10e-6
    assert section["mc_check"]["pulse_fit"]["rms_error_v"] == pytest.approx(np.sqrt(np.mean(pulse ** 2)), rel=0.02)


def test_a_pulse_takes_a_width_independent_charge_beyond_its_dc_factor(cal):
    # from the stored runs alone: at each width the first-order runs' sensitivity beyond the DC fit,
    # times a cell's charge, is about the same (the wordline's edges), the access device's negative
    edge = cal.column["replica_pulse"]["edge_per_pulse"]
    runs = {r["label"]: r for r in cal.column["replica_pulse"]["runs"]}
    sigma = cal.column["replica_pulse"]["sigma_vth_v"]
    a_dc, b_dc = cal.column["replica_pulse"]["dc_current_fit_at_model_v"][:2]
    e_a, e_s = [], []
    for w in (1, 2, 4, 6):
        pre = "" if w == 4 else f"w{w}/"
        q = {k: runs[pre + k]["charge_units"] for k in ("none", "a+", "a-", "s+", "s-")}
        cell = q["none"] / 32
        e_a.append((np.log(q["a+"] / q["a-"]) / (2 * sigma) - a_dc) * cell)
        e_s.append((np.log(q["s+"] / q["s-"]) / (2 * sigma) - b_dc) * cell)
    assert np.ptp(e_a) < 0.3 * abs(np.mean(e_a)) and np.ptp(e_s) < 0.5 * abs(np.mean(e_s))
    assert -1.6 < min(e_a) and max(e_a) < -0.9 and 0.6 < min(e_s) and max(e_s) < 1.4   # units per V per pulse
    p = params_from_calibration(cal)
    assert p.pulse_edge_units_per_v == (edge["e0_access_units_per_v"], edge["e0_storage_units_per_v"])
    assert edge["e0_access_units_per_v"] == pytest.approx(np.mean(e_a), abs=0.25)
    assert edge["e0_storage_units_per_v"] == pytest.approx(np.mean(e_s), abs=0.3)


def test_a_stack_storing_1_carries_its_edge_charge(cal):
    # one element, one input, keys of every level: the MAC kernel against the terms written out
    from topkima.behavioral.macro.mac import mac_units, pulse_terms
    p = params_from_calibration(cal)
    draws = draw_tile(p, np.random.default_rng(7), 15, 3)
    levels = np.arange(-7, 8)[None, :]
    for params, expect_edge in ((p, True), (params_from_calibration(_without_field(cal)), False)):
        dev = array_devices(params, 15, 3, draws)
        e_a, e_s = params.pulse_edge_units_per_v
        assert (e_a != 0) == expect_edge
        for q in (3, -2):
            u_l, u_r = mac_units(dev, pulse_terms(params, (1, 2, 4), False), np.array([[q]]), levels, 3)
            for c, level in enumerate(range(-7, 8)):
                want = {"l": 0.0, "r": 0.0}
                for s, scale in enumerate((1, 2, 4)):
                    digit = int(np.sign(level)) * ((abs(level) >> s) & 1)
                    w = abs(q) * scale
                    # what a pulse takes less in the MAC phase (column.mac_pulses): a + b·ln(w), stored 1 / 0
                    a1, b1, a0, b0 = params.mac_pulse_excess_units or (0.0,) * 4
                    x1, x0 = a1 + b1 * np.log(w), a0 + b0 * np.log(w)
                    stack, side = {(1, 1): (0, "l"), (1, -1): (2, "r"), (-1, 1): (1, "r"), (-1, -1): (3, "l")}[
                        (int(np.sign(q)), digit if digit else 1)]
                    da, ds = draws.mac_dvt_v[c, s, stack]
                    if digit:   # a stack storing 1: DC factor times the pulse, plus its edges' charge
                        full = params.pulse_slope * w + params.pulse_offset_units - x1
                        want[side] += float(dev.m_stack[s, stack, c]) * full
                        want[side] += e_a * da + e_s * ds
                    for other, oside in {1: ((0, "l"), (2, "r")), -1: ((1, "r"), (3, "l"))}[int(np.sign(q))]:
                        if not digit or other != stack:   # stacks storing 0: the charge-share packet
                            a_, b_ = (float(x) for x in params.share_mismatch(w))
                            d0 = draws.mac_dvt_v[c, s, other]
                            want[oside] += (float(params.share(w)) - x0) * (1 + a_ * d0[0] + b_ * d0[1])
                assert u_l[0, c] == pytest.approx(want["l"], abs=2e-4) and u_r[0, c] == pytest.approx(want["r"], abs=2e-4)


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


@pytest.mark.parametrize("change", [lambda e: e.update(e0_access_units_per_v=float("nan")),
                                    lambda e: e.pop("e0_storage_units_per_v"),
                                    lambda e: e.update(e0_storage_units_per_v="0.8")])
def test_a_bad_edge_field_is_refused_naming_it(cal, change):
    data = copy.deepcopy(cal.data)
    change(data["column"]["replica_pulse"]["edge_per_pulse"])
    with pytest.raises(ArtefactError, match="column.replica_pulse.edge_per_pulse"):
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
    # the MAC read stacks' edge charge: their added error had a spread (0.075 mV) the pulse edges explain most of
    assert after["mac"]["rms_mv"] < 0.7 * before["mac"]["rms_mv"]
    assert after["sa"] == before["sa"]   # the sense amplifier's group untouched
