"""The in-situ correction's extra nominal runs (artefact column.insitu_extra, topkima add-insitu-runs): fitted
on half of the added SPICE conversions, the correction predicts the other half better than the
calibration's 12 runs alone; only a nominal fit-nominal set is taken."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.calibration import Calibration, load_calibration
from topkima.calibration.artefact import ArtefactError
from topkima.calibration.insitu_runs import insitu_extra_section

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


def _with_runs(cal, runs):
    data = copy.deepcopy(cal.data)
    if runs:
        data["column"]["insitu_extra"]["runs"] = runs
    else:
        del data["column"]["insitu_extra"]
    return TopkimaMacro(Calibration(data))


def _static_errors_v(macro, runs):
    """Per run, the mean over the 32 sense instants of the model's V_R − V_L minus SPICE's (nominal chip)."""
    chip = macro.nominal()
    n = macro.params.n_ramp_steps
    out = []
    for run in runs:
        kl = np.zeros((64, chip.n_cols), dtype=np.int64)
        kl[:, 0] = run["keys"]
        u_l, u_r = chip.mac_units(np.array(run["inputs"])[None, :], kl)
        leak = chip.leak_units_per_unit(kl)[:1]
        j = np.arange(1, n + 1)[:, None]
        v_l, v_r = chip.bitline_voltages(np.broadcast_to(u_l[:, :1], (n, 1)), np.broadcast_to(u_r[:, :1], (n, 1)), leak, j)
        spice = np.asarray(run["v_rbl_r_at_sa_clk_v"]) - np.asarray(run["v_rbl_l_at_sa_clk_v"])
        out.append(float(np.mean(v_r[:, 0] - v_l[:, 0] - spice)))
    return np.array(out)


def test_half_the_added_runs_predict_the_other_half_better_than_the_calibrations_runs_alone(cal):
    runs = cal.column["insitu_extra"]["runs"]
    assert len(runs) >= 16
    fit, held = runs[0::2], runs[1::2]
    err_with = _static_errors_v(_with_runs(cal, fit), held)
    err_without = _static_errors_v(_with_runs(cal, None), held)
    rms = lambda e: float(np.sqrt(np.mean(e ** 2)))  # noqa: E731
    assert rms(err_with) < rms(err_without)


def test_the_model_fits_the_correction_to_every_added_run(cal):
    macro = TopkimaMacro(cal)
    n_own = len(cal.column["insitu_conversions"]["runs"])
    assert len(macro.params.insitu[0]) == n_own + len(cal.column["insitu_extra"]["runs"])


def test_only_a_nominal_fit_nominal_set_is_taken(cal):
    fit = json.loads((ROOT / "calibration" / "fit_conversions.json").read_text())
    with pytest.raises(ValueError, match="takes the 'fit-nominal' set only"):
        insitu_extra_section(fit, "fit_conversions.json", cal.column["insitu_conversions"])
    fit["set"] = "fit-nominal"     # a set that says it is nominal but carries mismatch draws
    with pytest.raises(ValueError, match="device mismatch"):
        insitu_extra_section(fit, "fit_conversions.json", cal.column["insitu_conversions"])


def test_a_bad_run_is_refused_with_the_command_that_remakes_it(cal):
    data = copy.deepcopy(cal.data)
    data["column"]["insitu_extra"]["runs"][0]["v_rbl_l_at_sa_clk_v"] = [0.3] * 5
    with pytest.raises(ArtefactError, match="column.insitu_extra.*add-insitu-runs"):
        Calibration(data)


def test_runs_of_another_corner_or_supplies_are_refused(tmp_path):
    # the committed fit-nominal runs (tt) added to the ss artefact: refused, naming both corners
    from topkima.calibration.insitu_runs import add_insitu_runs
    root = Path(__file__).parents[2]
    with pytest.raises(ValueError, match="corner 'tt'.*artefact is at 'ss'"):
        add_insitu_runs(root / "calibration" / "ss_calibration.json", root / "calibration" / "fit_nominal_conversions.json",
                        tmp_path / "out.json")
    doc = json.loads((root / "calibration" / "fit_nominal_conversions.json").read_text())
    doc["supplies"] = dict(doc["supplies"], v_sa_v=0.9)
    (tmp_path / "other.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="supplies"):
        add_insitu_runs(None, tmp_path / "other.json", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
