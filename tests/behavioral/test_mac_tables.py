"""The MAC phase's code tables (behavioral/macro/mac.py) against the sum written out term by term in
numpy float32, on chips with mismatch, on both named arrays (three pulse scales and one): equal bit
for bit, since the module docstring fixes the order of the float32 operations; and a pulse-scale
count the kernel does not take is refused."""
import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro.mac import STACK_OF_SIGN_SIDE, TERMS_PER_SCALE, mac_units, pulse_terms
from topkima.calibration import load_calibration


def units_written_out(devices, pulse, q, levels, n_scales):
    """(U_L, U_R) float32: per row, element by element, the line each bitline gets, scale by scale:
    a stack storing 1 adds full·m, then its edges; one storing 0 adds share, then share·α·Δa, then
    share·β·Δs."""
    n = levels.shape[1]
    out = np.zeros((q.shape[0], 2, n), dtype=np.float32)
    edge_access, edge_storage = devices.edge_units_per_v[0], devices.edge_units_per_v[1]
    for r in range(q.shape[0]):
        for e in range(q.shape[1]):
            x = int(q[r, e])
            if x == 0:
                continue
            for side in range(2):
                stack = STACK_OF_SIGN_SIDE[0 if x > 0 else 1][side]
                level = levels[e].astype(np.int64)
                line = np.zeros(n, dtype=np.float32)
                for s in range(n_scales):
                    row = e * n_scales + s
                    full, share, share_a, share_s = pulse[abs(x), TERMS_PER_SCALE * s:TERMS_PER_SCALE * (s + 1)]
                    stores_1 = (((np.abs(level) >> s) & 1) == 1) & ((level > 0) == (stack < 2))
                    d_a = devices.dvt_access_v[row, stack, :n]
                    d_s = devices.dvt_storage_v[row, stack, :n]
                    if_1 = line + full * devices.m_stack[row, stack, :n]
                    if_1 = if_1 + edge_access * d_a
                    if_1 = if_1 + edge_storage * d_s
                    if_0 = line + share
                    if_0 = if_0 + share_a * d_a
                    if_0 = if_0 + share_s * d_s
                    line = np.where(stores_1, if_1, if_0)
                out[r, side] += line
    return out[:, 0], out[:, 1]


@pytest.mark.parametrize("array", ["256x256", "128x128"])
def test_code_tables_equal_the_terms_written_out(array):
    macro = TopkimaMacro(load_calibration(), array=array, sigma_scale=3.0)
    chip = macro.instance(np.random.default_rng(4))
    rng = np.random.default_rng(9)
    n_scales = len(chip.scales)
    d, n = 23, 37              # counts that are multiples of neither the elements per pass nor the vector width
    # rows sharing some codes per element (the tables' lines) and zeros (no pulse)
    q = rng.choice(np.arange(-31, 32), size=(12, d))
    q[rng.random(q.shape) < 0.2] = 0
    q[6:] = np.where(rng.random((6, d)) < 0.5, q[:6], q[6:])
    levels = rng.integers(-chip.k_max, chip.k_max + 1, size=(d, n))
    devices = chip.devices(0)
    u_l, u_r = mac_units(devices, chip.pulse, q, levels, n_scales)
    ref_l, ref_r = units_written_out(devices, chip.pulse, q, levels, n_scales)
    assert np.any(ref_l != 0) and np.any(ref_r != 0)
    np.testing.assert_array_equal(u_l, ref_l.astype(np.float64))
    np.testing.assert_array_equal(u_r, ref_r.astype(np.float64))


def test_a_pulse_scale_count_the_kernel_does_not_take_is_refused():
    macro = TopkimaMacro(load_calibration())
    with pytest.raises(ValueError, match="1 to 3 pulse scales"):
        pulse_terms(macro.params, (1, 2, 4, 8), False)
    chip = macro.nominal()
    with pytest.raises(ValueError, match="1 to 3 pulse scales"):
        mac_units(chip.devices(0), chip.pulse, np.ones((1, 4), int), np.ones((4, 3), int), 4)
