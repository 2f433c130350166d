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
    assert devices.vcm_breaks_v.size == MAX_VCM_BREAKS and np.all(devices.vcm_breaks_v[n_modes - 2:] == np.inf)
    # below, between, at and above every characterised common mode
    sweep = np.concatenate([np.linspace(-0.2, 1.0, 97), grid, grid + 1e-12, grid - 1e-12])
    for col in range(v_os.shape[0]):
        for cm in sweep:
            assert comparator_offset_v(devices, col, cm) == pytest.approx(_written_out(grid, v_os[col], cm),
                                                                          rel=1e-12, abs=1e-15)


def test_on_a_boundary_the_lower_segment_is_taken_exactly():
    # CM exactly on an inner boundary lies in the segment below it (the boundary is not below CM), as
    # the earlier loop ("the last boundary below CM") had it; exact equality, not a tolerance: both
    # segments' lines meet there only up to rounding
    rng = np.random.default_rng(9)
    grid = np.array([0.15, 0.25, 0.35, 0.45, 0.55])
    devices, v_os = _devices(grid, rng)
    for col in range(v_os.shape[0]):
        for cm in grid[1:-1]:
            s = int(np.flatnonzero(grid[1:-1] == cm)[0])          # boundary s + 1 of the grid: segment s
            assert comparator_offset_v(devices, col, cm) == devices.v_os_at_0_v[col, s] + devices.v_os_per_v[col, s] * cm
            assert comparator_offset_v(devices, col, np.nextafter(cm, 1.0)) == (
                devices.v_os_at_0_v[col, s + 1] + devices.v_os_per_v[col, s + 1] * np.nextafter(cm, 1.0))


def test_an_offset_model_the_kernels_cannot_take_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="MAX_VCM_BREAKS"):
        _devices(np.linspace(0.1, 0.6, MAX_VCM_BREAKS + 3), rng)      # one boundary too many
    for grid in ([0.15, 0.45, 0.35, 0.5], [0.15, 0.35, 0.35, 0.5], [0.5, 0.2, 0.3, 0.4], [0.1, 0.2, np.nan, 0.4]):
        with pytest.raises(ValueError, match="must increase"):      # decreasing, equal, outer, NaN
            _devices(grid, rng)
