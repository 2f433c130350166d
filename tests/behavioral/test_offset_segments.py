"""The comparator offset model's segments as the kernels pick them (a constant count of compares over
boundaries padded with +inf) against the piecewise-linear model written out: the line through the two
characterised common modes that bracket CM, the end lines extrapolated. Synthetic offsets on grids of
2 to 8 common modes; no SPICE, no weights."""
from dataclasses import replace

import numpy as np
import pytest

from topkima.behavioral.macro import TopkimaMacro
from topkima.behavioral.macro.adc import comparator_offset_v
from topkima.behavioral.macro.devices import MAX_VCM_BREAKS, TileDraws, array_devices
from topkima.calibration import load_calibration


def _devices(grid, rng, n_cols=4, rows=8):
    p = replace(TopkimaMacro(load_calibration()).params, sa_vcm_v=np.asarray(grid, float))
    v_os = rng.normal(0.0, 0.01, (n_cols, len(grid)))
    draws = TileDraws(np.zeros((n_cols, rows, 4, 2)), np.zeros((n_cols, p.n_cal_rows, 2)),
                      np.zeros((n_cols, p.n_ramp_rows, 2)), v_os)
    return array_devices(p, n_cols, rows, draws), v_os


def _written_out(grid, v_os_col, cm):
    """The model by its definition: inner boundaries grid[1:-1]; CM above s of them lies on the line
    through (grid[s], v[s]) and (grid[s + 1], v[s + 1])."""
    s = sum(1 for b in grid[1:-1] if b < cm)
    slope = (v_os_col[s + 1] - v_os_col[s]) / (grid[s + 1] - grid[s])
    return v_os_col[s] + slope * (cm - grid[s])


@pytest.mark.parametrize("n_modes", [2, 3, 5, MAX_VCM_BREAKS + 2])
def test_offset_segments_equal_the_model_written_out(n_modes):
    rng = np.random.default_rng(n_modes)
    grid = np.sort(rng.uniform(0.1, 0.6, n_modes))
    devices, v_os = _devices(grid, rng)
    assert devices.vcm_breaks_v.size == MAX_VCM_BREAKS and np.all(np.isinf(devices.vcm_breaks_v[n_modes - 2:]))
    # below, between, at and above every characterised common mode
    sweep = np.concatenate([np.linspace(-0.2, 1.0, 97), grid, grid + 1e-12, grid - 1e-12])
    for col in range(v_os.shape[0]):
        for cm in sweep:
            assert comparator_offset_v(devices, col, cm) == pytest.approx(_written_out(grid, v_os[col], cm),
                                                                          rel=1e-12, abs=1e-15)


def test_an_offset_model_the_kernels_cannot_take_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="MAX_VCM_BREAKS"):
        _devices(np.linspace(0.1, 0.6, MAX_VCM_BREAKS + 3), rng)      # one boundary too many
    with pytest.raises(ValueError, match="must increase"):
        _devices([0.15, 0.45, 0.35, 0.5], rng)
