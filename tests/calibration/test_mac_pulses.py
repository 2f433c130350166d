"""The MAC pulses' per-pulse term (artefact column.mac_pulses): its fit against the stored SPICE runs it
comes from, the model's MAC units against a slow pulse-by-pulse reference, and a bad field's error."""
import copy

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.calibration import Calibration, load_calibration
from topkima.calibration.artefact import ArtefactError
from topkima.calibration.mac_pulses import bitline_pulses, excess_rows, fit_excess, nominal_units


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


def test_the_stored_fit_is_the_fit_of_the_stored_runs_and_it_explains_them(cal):
    section = cal.column["mac_pulses"]
    refit = fit_excess(excess_rows(cal.column, section["runs"]), section["v_min_v"], section["nuisance_degree"])
    assert refit["excess_units"] == pytest.approx(section["excess_units"], rel=1e-9)
    # the per-pulse terms take the residual of model − SPICE units from 0.15 to 0.03 units (85 → 19 µV)
    assert refit["rms_residual_units"] < 0.3 * refit["rms_residual_without_units"]
    assert refit["rms_loo_units"] < 0.3 * refit["rms_residual_without_units"]
    a1, b1, a0, b0 = section["excess_units"]
    assert a1 > 0 and b1 > 0     # a pulse storing 1 takes less in the MAC phase than alone, more so when long


def test_model_mac_units_equal_a_pulse_by_pulse_reference(cal):
    """The nominal chip's MAC units (pulse tables, float32 kernel) against the pulses written out: each
    single-pulse charge less a + b·ln(w)."""
    a1, b1, a0, b0 = cal.column["mac_pulses"]["excess_units"]
    chip = TopkimaMacro(cal).nominal()
    for run in cal.column["mac_pulses"]["runs"][:8]:
        kl = np.zeros((64, chip.n_cols), dtype=np.int64)
        kl[:, 0] = run["keys"]
        u_l, u_r = chip.mac_units(np.array(run["inputs"])[None, :], kl)
        for model, (w1, w0) in zip((u_l[0, 0], u_r[0, 0]), bitline_pulses(run["inputs"], run["keys"], (1, 2, 4))):
            reference = (nominal_units(cal.column, w1, w0) - np.sum(a1 + b1 * np.log(w1))
                         - np.sum(a0 + b0 * np.log(w0)))
            assert model == pytest.approx(reference, abs=2e-3)


def test_a_bad_field_is_refused_with_the_command_that_remakes_it(cal):
    data = copy.deepcopy(cal.data)
    data["column"]["mac_pulses"]["excess_units"] = [0.01, float("nan"), 0.0, 0.0]
    with pytest.raises(ArtefactError, match="column.mac_pulses.excess_units.*calibrate-mac-pulses"):
        Calibration(data)


def test_an_artefact_without_the_field_keeps_the_single_pulse_charges(cal):
    data = copy.deepcopy(cal.data)
    del data["column"]["mac_pulses"]
    old = TopkimaMacro(Calibration(data))
    assert old.params.mac_pulse_excess_units is None
    run = cal.column["mac_pulses"]["runs"][0]
    chip = old.nominal()
    kl = np.zeros((64, chip.n_cols), dtype=np.int64)
    kl[:, 0] = run["keys"]
    u_l = chip.mac_units(np.array(run["inputs"])[None, :], kl)[0][0, 0]
    assert u_l == pytest.approx(nominal_units(cal.column, *bitline_pulses(run["inputs"], run["keys"], (1, 2, 4))[0]),
                                abs=2e-3)


def test_the_fits_leakage_is_the_models():
    # the fit's SPICE side subtracts the leakage the model would add by the bench's reading instant
    # (calibration/mac_pulses.leak_units reads the artefact's raw fields); the model's own rate
    # (leak_units_per_unit) and relative rate at the bitline's level (its leak_rel table) must give
    # the same units, or the fitted excess would absorb the difference
    import numpy as np
    from topkima.behavioral import TopkimaMacro
    from topkima.calibration import load_calibration
    from topkima.calibration import mac_pulses as mp
    cal = load_calibration()
    chip = TopkimaMacro(cal).nominal()
    bl, t_end = chip.bitlines, mp.t_end_units(cal.column)
    rng = np.random.default_rng(11)
    for units in (20.0, 150.0, 260.0, 400.0):
        keys = rng.integers(-7, 8, chip.n_elements)
        rate = float(np.asarray(chip.leak_units_per_unit(keys.reshape(-1, 1))).ravel()[0])
        x = min(max((units + 0.5 * rate * t_end) * bl.points_per_unit, 0.0), float(bl.last_index))
        i = min(int(x), bl.last_index)
        model = rate * t_end * (bl.leak_rel[i] + (x - i) * bl.leak_rel_d[i])
        assert abs(mp.leak_units(cal.column, keys, units, t_end) - model) <= 2e-3 * model
