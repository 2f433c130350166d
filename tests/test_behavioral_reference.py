"""The fast vectorised macro against a slow, obvious cycle-by-cycle reference (same instance, same draws)."""
import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro import _Engine, _offset
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def macro():
    return TopkimaMacro(load_calibration())


#: the fast path's MAC products are float32 (macro.MAC_DTYPE): ~1e-8 V on a bitline. A decision
#: closer than this to the comparator's threshold may go either way between the two paths.
THRESHOLD_TIE_V = 1e-6


def reference_topk(view, q, kl, k, z=None, details=None):
    """Loop over rows, columns, key elements and ramp cycles; arbiter in program order.

    ``details`` (a dict) receives per (row, column) the MAC units and the margin |g + σ·z| of
    the decisions that set the firing cycle (the smallest of them)."""
    e: _Engine = view._e
    p = e.p
    tile = view._tile(0)
    n_s = len(e.scales)
    n_keys = kl.shape[1]
    n_total = 2 * e.n_elements * n_s + 64
    unit_full = lambda w: p.pulse_slope * w + p.pulse_offset_units  # noqa: E731
    out_idx, out_cycles, out_firing = [], [], []
    units = np.zeros((q.shape[0], n_keys, 2))
    margin = np.full((q.shape[0], n_keys), np.inf)
    for r in range(q.shape[0]):
        firing = []
        for c in range(n_keys):
            u_l = u_r = 0.0
            n1 = 0
            for el in range(kl.shape[0]):
                level = kl[el, c]
                for pp in range(n_s):
                    digit = int(np.sign(level)) * ((abs(int(level)) >> pp) & 1)
                    n1 += abs(digit)
                    row = el * n_s + pp
                    w = abs(int(q[r, el])) * e.scales[pp]
                    if w == 0:
                        continue
                    m = tile.m_stack[row, :, c]
                    alpha, beta = (float(x) for x in p.share_mismatch(w))

                    def share(stack):  # the charge-share packet of this stack, with its own draws
                        return float(p.share(w)) * (1 + alpha * tile.dvt_a[row, stack, c]
                                                    + beta * tile.dvt_s[row, stack, c])
                    if q[r, el] > 0:   # RWL+: L cell -> RBL_L (stack 0), R cell -> RBL_R (stack 2)
                        u_l += m[0] * unit_full(w) if digit > 0 else share(0)
                        u_r += m[2] * unit_full(w) if digit < 0 else share(2)
                    else:              # RWL-: L cell -> RBL_R (stack 1), R cell -> RBL_L (stack 3)
                        u_r += m[1] * unit_full(w) if digit > 0 else share(1)
                        u_l += m[3] * unit_full(w) if digit < 0 else share(3)
            leak = p.leak1_units_per_unit * n1 + p.leak0_units_per_unit * (n_total - n1)
            g = {}
            for j in range(1, p.n_ramp_steps + 1):
                t = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / p.t_unit_s
                v_r = float(e.f(np.array(u_r + leak * t + tile.u_cal[c])))
                v_l = float(e.f(np.array(u_l + leak * t + tile.u_ramp_cum[c, j])))
                if e.insitu is not None:  # the sense amplifier's in-situ correction, term by term
                    terms = [1.0, j - 1.0, 1.0 if j == 1 else 0.0, p.curve_v[0] - v_l, p.curve_v[0] - v_r]
                    v_l, v_r = (v_l + sum(c_ * x for c_, x in zip(e.insitu.coef_l_v, terms)),
                                v_r + sum(c_ * x for c_, x in zip(e.insitu.coef_r_v, terms)))
                g[j] = v_r - v_l - float(_offset(tile, np.array(0.5 * (v_r + v_l)), c))
            units[r, c] = u_l, u_r
            j0 = next((j for j in range(1, 33) if g[j] > 0), 33)
            margin[r, c] = min(abs(g[j]) for j in (j0 - 1, j0) if 1 <= j <= 32)
            fire = j0
            if z is not None:
                h = z.shape[-1] // 2
                fire = min(j0 + h, 33)
                for w in range(2 * h):
                    j = j0 - h + w
                    if 1 <= j <= 32:
                        margin[r, c] = min(margin[r, c], abs(g[j] + p.sa_noise_sigma_v * float(z[r, c, w])))
                    if 1 <= j <= 32 and g[j] + p.sa_noise_sigma_v * float(z[r, c, w]) > 0:
                        fire = j
                        break
            firing.append(fire)
        # arbiter: cycle by cycle, lower addresses first, stop at k grants
        granted = []
        stop = 32
        for j in range(1, 33):
            for c in range(n_keys):
                if firing[c] == j and len(granted) < k:
                    granted.append(c)
            if len(granted) >= k:
                stop = j
                break
        out_idx.append(granted + [-1] * (k - len(granted)))
        out_cycles.append(stop)
        out_firing.append(firing)
    if details is not None:
        details.update(units=units, margin=margin)
    return np.array(out_idx), np.array(out_cycles), np.array(out_firing)


def assert_same_conversions(fast, idx, cycles, firing, details):
    """Equal firing cycles except for decisions within THRESHOLD_TIE_V of the threshold (rare);
    rows without such a tie have equal grants and stop cycles."""
    differ = fast.firing_cycle != firing
    assert np.all(details["margin"][differ] < THRESHOLD_TIE_V), "the fast path disagrees away from a tie"
    assert differ.mean() < 0.01
    same_rows = ~differ.any(axis=-1)
    np.testing.assert_array_equal(fast.indices[same_rows], idx[same_rows])
    np.testing.assert_array_equal(fast.cycles[same_rows], cycles[same_rows])


class _ReplayRng:
    """Hands the fast path pre-drawn comparator noise, so both paths use the same draws."""

    def __init__(self, z):
        self.z = z

    def standard_normal(self, shape, dtype=np.float64):
        # one noise row per (row, column) element, in that order
        assert np.prod(shape) == self.z.size and shape[-1] == self.z.shape[-1]
        return self.z.reshape(shape).astype(dtype)


def _case(seed, rows, n_keys, d, scale):
    rng = np.random.default_rng(seed)
    q = rng.integers(-scale, scale + 1, (rows, d)) * (rng.random((rows, d)) < 0.6)
    kl = rng.integers(-4, 5, (d, n_keys))
    return q, kl


# scale 9 (19 input codes) takes the MAC's code-table product, scale 15 (31 codes) the 8-block one
@pytest.mark.parametrize("seed,scale", [(1, 9), (2, 9), (3, 9), (4, 15), (5, 15)])
def test_fast_path_equals_reference_with_mismatch_and_noise(macro, seed, scale):
    chip = macro.instance(np.random.default_rng(100 + seed))
    q, kl = _case(seed, rows=6, n_keys=24, d=16, scale=scale)
    h = chip._e.noise_half_window()
    z = np.random.default_rng(seed).standard_normal((6, 24, 2 * h)).astype(np.float32)
    fast = chip.topk(q, kl, k=5, rng=_ReplayRng(z))
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 5, z=z.astype(np.float64), details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert len(np.unique(firing)) >= 8  # crossings spread over the ramp, not all saturated
    # the MAC phase itself: float32 products against the reference's float64 sums
    u_l, u_r = chip._e.mac_units(q, kl, chip._tile(0))
    np.testing.assert_allclose(np.stack([u_l, u_r], axis=-1), details["units"], rtol=1e-5, atol=1e-4)


def test_fast_path_equals_reference_with_ties(macro):
    # identical key columns fire in the same cycle: the arbiter must grant lower addresses first
    chip = macro.nominal()
    rng = np.random.default_rng(9)
    q = rng.integers(-9, 10, (5, 16))
    col = rng.integers(-4, 5, (16, 1))
    kl = np.concatenate([col] * 6 + [rng.integers(-4, 5, (16, 6))], axis=1)
    fast = chip.topk(q, kl, k=3)
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 3, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert np.any(np.diff(firing[:, :6], axis=1) == 0)  # the tie really happened
