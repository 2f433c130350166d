"""The in-column sensitivities of the next sense-amplifier devices (artefact comparator.in_column_devices,
topkima calibrate-in-column-devices): the model's threshold against the SPICE runs they come from."""
import copy

import numpy as np
import pytest

from topkima.behavioral.macro.devices import sa_offsets
from topkima.behavioral.params import SA_MIRROR_DEVICES, params_from_calibration
from topkima.calibration import Calibration, load_calibration
from topkima.calibration.artefact import ArtefactError


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


def _threshold_at(p, shifts: dict, cm: float) -> float:
    """The model's threshold for one latch's device shifts at common mode ``cm`` (piecewise linear, written out)."""
    dvt = np.array([[shifts.get(name, 0.0) for name in p.sa_devices]])
    th = sa_offsets(p, dvt)[0]
    g = p.sa_vcm_v
    seg = min(max(int(np.searchsorted(g, cm)) - 1, 0), g.size - 2)
    return th[seg] + (cm - g[seg]) * (th[seg + 1] - th[seg]) / (g[seg + 1] - g[seg])


def test_the_model_threshold_reproduces_every_device_run(cal):
    icd = cal.comparator["in_column_devices"]
    p = params_from_calibration(cal)
    assert {r["label"] for r in icd["runs"]} == {f"{d}{s}" for d in icd["sensitivity_v_per_v"] for s in "+-"}
    for dev in icd["sensitivity_v_per_v"]:
        up, down = (next(r for r in icd["runs"] if r["label"] == f"{dev}{s}") for s in "+-")
        err_up = _threshold_at(p, up["sa_dvt_v"], up["vcm_v"]) - up["threshold_v"]
        err_down = _threshold_at(p, down["sa_dvt_v"], down["vcm_v"]) - down["threshold_v"]
        # the linear term is matched both ways (to the bisection's resolution) …
        assert err_up - err_down == pytest.approx(0.0, abs=15e-6), dev
        # … and the level is the nominal plane's at that common mode, to its residual and the curvature
        assert abs(err_up) < 30e-6 and abs(err_down) < 30e-6, dev


def test_a_measured_mirror_keeps_its_own_sensitivity_and_it_is_near_the_opposite(cal):
    icd = cal.comparator["in_column_devices"]
    sens = icd["sensitivity_v_per_v"]
    mirror = icd["mirror_check"]
    first = next(d for d, m in SA_MIRROR_DEVICES.items() if m == mirror)
    assert first in sens and mirror in sens
    # SPICE: the mirror device acts with (about) the opposite sign in the column too
    assert sens[mirror] == pytest.approx(-sens[first], abs=0.3 * abs(sens[first]) + 2 * icd["resolution_v_per_v"][first])
    p = params_from_calibration(cal)
    lin = cal.comparator["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    col = np.asarray(lin["sensitivity_v_per_v"])[order][:, p.sa_devices.index(mirror)]
    expected = sens[mirror] - np.interp(cal.comparator["in_column"]["vcm_v"], p.sa_vcm_v, col)
    assert p.sa_in_column_extra_per_v[p.sa_devices.index(mirror)] == pytest.approx(expected)


def test_without_the_field_the_devices_keep_their_ideal_source_sensitivity(cal):
    data = copy.deepcopy(cal.data)
    del data["comparator"]["in_column_devices"]
    p0 = params_from_calibration(Calibration(data))
    for dev in cal.comparator["in_column_devices"]["sensitivity_v_per_v"]:
        assert p0.sa_in_column_extra_per_v[p0.sa_devices.index(dev)] == 0.0
    p = params_from_calibration(cal)
    for dev in ("mip", "mlp", "mnp"):   # the three pairs' terms are comparator.in_column's, unchanged
        i = p.sa_devices.index(dev)
        assert p.sa_in_column_extra_per_v[i] == p0.sa_in_column_extra_per_v[i]


@pytest.mark.parametrize("change, match", [
    (lambda c: c["in_column_devices"].update(sensitivity_v_per_v={"m_unknown": 0.1}), "in_column_devices.sensitivity"),
    (lambda c: c["in_column_devices"].update(sensitivity_v_per_v={"mrlp": float("nan")}), "in_column_devices.sensitivity"),
    (lambda c: c.pop("in_column"), "needs comparator.in_column"),
])
def test_a_bad_field_is_refused_naming_it(cal, change, match):
    data = copy.deepcopy(cal.data)
    change(data["comparator"])
    with pytest.raises(ArtefactError, match=match):
        Calibration(data)
