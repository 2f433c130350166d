"""The ramp's bow: the model's nominal ramp against the SPICE ramp block at five starting levels.

SPICE's ramp steps shrink along the ramp by 2–3 % (INL +0.09 … +0.13 LSB): early steps, at a higher
bitline level, carry more of the idle stacks' leakage, which grows with the level. The model takes
the leakage at each bitline's level from the column's droop (artefact ``column.bitline_droop``,
``topkima calibrate-droop``); with one rate, as before, its bow was a third of SPICE's at the top of
the range (+0.04 LSB). The SPICE side is the artefact's ramp block (``topkima calibrate``: nominal
replica cells, RBL_L pre-discharged by 0 … 400 units), measured apart from the droop bench.
"""
import copy

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro.bitline import leak_units_array, v_of_units_array
from topkima.calibration import Calibration, load_calibration


def _pre_discharge(pre_units: int, n_elements: int = 64):
    """The ramp block's MAC vectors (circuits/ramp.py): elements with key 4, input ⌈left / 4⌉ ≤ 31."""
    keys, q = np.zeros(n_elements, np.int64), np.zeros(n_elements, np.int64)
    left, e = pre_units, 0
    while left > 0:
        keys[e], q[e] = 4, min(31, -(-left // 4))
        left -= 4 * q[e]
        e += 1
    return keys, q


def model_ramp_levels(macro: TopkimaMacro, pre_units: int) -> np.ndarray:
    """V(RBL_L) of the nominal model at sense instants 0 … n of a column pre-discharged as the ramp block's,
    before the sense amplifier's in-situ correction (the ramp block has none attached)."""
    chip = macro.nominal()
    keys, q = _pre_discharge(pre_units, chip.n_elements)
    kl = np.zeros((chip.n_elements, chip.n_cols), np.int64)
    kl[:, 0] = keys
    u_l, _ = chip.mac_units(q[None, :], kl)
    leak = chip.leak_units_per_unit(kl)[0]
    bl, ramp = chip.bitlines, chip.ramp(0)
    j = np.arange(chip.params.n_ramp_steps + 1)
    u_ramp = ramp.u_ramp_after_units[0]
    return v_of_units_array(bl, u_l[0, 0] + leak_units_array(bl, j, leak, u_l[0, 0], u_ramp, bl.ramp_age_frac[j]) + u_ramp)


def inl_max_lsb(levels: np.ndarray) -> float:
    lsb = (levels[0] - levels[-1]) / (levels.size - 1)
    return float(np.max((levels[0] - levels) / lsb - np.arange(levels.size)))


@pytest.fixture(scope="module")
def calibration():
    return load_calibration()


def test_model_bow_follows_the_spice_ramp_block_at_every_level(calibration):
    macro = TopkimaMacro(calibration)
    by_level = calibration.ramp["step_vs_start_level"]
    assert len(by_level) >= 3
    for spice in by_level:
        levels = model_ramp_levels(macro, spice["pre_units_l"])
        assert levels[0] == pytest.approx(spice["v_rbl_l_start_v"], abs=1.5e-3)
        assert inl_max_lsb(levels) == pytest.approx(spice["inl_max_lsb"], abs=0.025), spice["pre_units_l"]
        lsb = (levels[0] - levels[-1]) / (levels.size - 1)
        assert lsb == pytest.approx(spice["lsb_v"], rel=0.01), spice["pre_units_l"]


def test_steps_shrink_along_the_ramp_as_spice_s(calibration):
    """Step by step at the top of the range (RBL_L from 0.5 V): from step 15 on (below 0.47 V; above
    it the discharge curve is its extrapolated start and the release transient, a further 1 % off), the
    model's steps within 0.5 % of SPICE's, and they shrink as SPICE's do."""
    levels = model_ramp_levels(TopkimaMacro(calibration), 0)
    model, spice = -np.diff(levels), np.asarray(calibration.ramp["steps_v"])
    np.testing.assert_allclose(model[14:], spice[14:], rtol=0.005)
    assert spice[-1] / spice[14] - 1 == pytest.approx(model[-1] / model[14] - 1, abs=0.003)
    assert spice[-1] / spice[14] - 1 < -0.01


def test_without_the_droop_field_the_leakage_is_one_rate(calibration):
    """An artefact without ``column.bitline_droop`` is read as before: leak × t on both bitlines."""
    data = copy.deepcopy(calibration.data)
    data["column"].pop("bitline_droop")
    chip = TopkimaMacro(Calibration(data)).nominal()
    assert chip.params.leak_rel_at_curve is None
    bl = chip.bitlines
    j = np.arange(chip.params.n_ramp_steps + 1)
    leaked = leak_units_array(bl, j, 0.02, 300.0, 40.0, bl.ramp_age_frac[j])
    np.testing.assert_array_equal(leaked, 0.02 * bl.t_sense_units[j])
    with_field = TopkimaMacro(calibration).nominal().bitlines
    assert with_field.leak_rel.max() > 1.2 and with_field.leak_rel.min() < 0.5


def test_the_models_leakage_rate_is_the_measured_droop_relative_to_its_rate_at_045_v():
    """An independent reading of the artefact's droop table (the slow reference shares
    params.leak_relative_at_curve with the fast path): at every measured level above 0.15 V (where
    the measured rate already rises with the level) the model's rate on the curve's grid, relative to
    its 0.45 V rate, is the measured rate divided by the measured rate at 0.45 V."""
    from topkima.behavioral.params import leak_relative_at_curve
    col = load_calibration().column
    droop = col["bitline_droop"]
    v, rate = np.asarray(droop["v_rbl_v"]), np.asarray(droop["rate_units_per_unit"])
    at_045 = np.interp(0.45, v, rate)
    rel_on_curve = leak_relative_at_curve(col, 0.45)
    curve_v = np.asarray(col["discharge_curve"]["v_rbl_v"])          # falls with the units
    for level, r in zip(v, rate):
        if 0.15 < level < curve_v[0]:
            model = np.interp(level, curve_v[::-1], rel_on_curve[::-1])
            assert model == pytest.approx(r / at_045, rel=0.01), level
    assert np.all(np.diff(rel_on_curve) <= 1e-12)     # the rate falls as the bitline falls (units grow)
