"""The compiled macro against a slow, obvious cycle-by-cycle reference (same chip, same draws).

The reference below loops over rows, columns, key elements and ramp cycles in plain Python,
straight from the circuit description in the modules' docstrings; it shares only the
calibrated tables with the fast path (the discharge curve, the frozen devices, the pulse
table), and draws the comparator noise from the plain-Python copy of the counter stream.
"""
import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro.noise import Z_MAX, noise_key, standard_normal_py
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def macro():
    return TopkimaMacro(load_calibration())


#: the fast path's MAC products are float32: ~1e-8 V on a bitline. A decision closer than
#: this to the comparator's threshold may go either way between the two paths.
THRESHOLD_TIE_V = 1e-6


def _curve(chip, units, curve_v=None):
    """The discharge curve: the artefact's points, linearly interpolated (flat beyond them)."""
    p = chip.params
    return float(np.interp(units, p.curve_units, p.curve_v if curve_v is None else curve_v))


def _leaked_units(chip, leak, j, u_mac, u_phase, phase):
    """Units the idle stacks have taken from a bitline by sense instant j: leak (units per PWM unit at
    0.45 V) × t_j × the measured relative droop rate at the bitline's mean level over [0, t_j] — its MAC
    units, plus its ``phase`` ("cal" on RBL_R, "ramp" on RBL_L) units for the mean time since their
    pulses' centres, plus half the leakage — step by step from the clocks."""
    p = chip.params
    unit = p.t_unit_s
    t = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / unit
    if p.leak_rel_at_curve is None:
        return leak * t
    pulse_start = (p.t_cal_start_s - p.t_mac_start_s + p.t_pulse_delay_s) / unit   # the calibration clock's pulse
    _, t_cal_units, t_ramp_units = p.insitu[1]      # the pulses' centres: the characterised window's pulses
    if phase == "cal":
        since = [t - (pulse_start + 0.5 * t_cal_units)]
    else:                                            # ramp step k pulses in clock k
        since = [t - (pulse_start + k * p.t_clk_ima_s / unit + 0.5 * t_ramp_units) for k in range(1, j + 1)]
    mean_since = float(np.mean(since)) if since else 0.0
    u_mean = u_mac + u_phase * mean_since / t + 0.5 * leak * t
    return leak * t * float(np.interp(u_mean, p.curve_units, p.leak_rel_at_curve))


def _offset(devices, col, cm):
    seg = int(np.sum(devices.vcm_breaks_v < cm))
    return devices.v_os_at_0_v[col, seg] + devices.v_os_per_v[col, seg] * cm


def reference_topk(chip, q, kl, k, insitu=None, key=None, enable=None, details=None):
    """Loop over rows, columns, key elements and ramp cycles; arbiter in program order.

    ``insitu``: the macro's fitted in-situ correction (None: none, as in the ideal macro);
    ``key``: the noise key (None: no noise); ``enable`` (rows, n_keys): columns enabled at the
    arbiter (None: all). ``details`` (a dict) receives per (row, column)
    the MAC units and the margin |g + σ·z| of the decisions that set the firing cycle."""
    p = chip.params
    dev = chip.devices(0)
    ramp = chip.ramp(0)
    n_s = len(chip.scales)
    n_keys = kl.shape[1]
    n = p.n_ramp_steps              # ramp steps: cycles 1 … n, n + 1 = never
    n_total = 2 * chip.n_elements * n_s + p.n_cal_rows + p.n_ramp_rows   # MAC stacks + replica ports
    # a MAC pulse's single-pulse charge less what it takes less in the MAC phase (column.mac_pulses): a + b·ln(w)
    a1, b1, a0, b0 = p.mac_pulse_excess_units if p.mac_pulse_excess_units and not chip.linear else (0.0,) * 4
    full = lambda w: p.pulse_slope * w + p.pulse_offset_units - (a1 + b1 * np.log(w))  # noqa: E731
    h = chip.noise_half_window()
    curve = None
    if chip.linear:   # the ideal macro: the curve's initial slope, extended without saturation
        curve = p.curve_v[0] - (p.curve_v[0] - p.v_of_units(200.0)) / 200.0 * p.curve_units
    out_idx, out_cycles, out_firing = [], [], []
    units = np.zeros((q.shape[0], n_keys, 2))
    margin = np.full((q.shape[0], n_keys), np.inf)
    for r in range(q.shape[0]):
        firing = []
        for c in range(n_keys):
            u_l = u_r = 0.0
            n1 = 0
            for el in range(kl.shape[0]):
                level = int(kl[el, c])
                for pp in range(n_s):
                    digit = int(np.sign(level)) * ((abs(level) >> pp) & 1)
                    n1 += abs(digit)
                    row = el * n_s + pp
                    w = abs(int(q[r, el])) * chip.scales[pp]
                    if w == 0:
                        continue
                    m = dev.m_stack[row, :, c]
                    share_w = 0.0 if chip.linear else float(p.share(w)) - (a0 + b0 * np.log(w))
                    alpha, beta = (float(x) for x in p.share_mismatch(w))

                    def share(stack):  # the charge-share packet of this stack, with its own draws
                        return share_w * (1 + alpha * dev.dvt_access_v[row, stack, c]
                                          + beta * dev.dvt_storage_v[row, stack, c])

                    def one(stack):    # a stack storing 1: its DC factor times the pulse, plus its edges' charge
                        e_a, e_s = p.pulse_edge_units_per_v
                        return m[stack] * full(w) + (e_a * float(dev.dvt_access_v[row, stack, c])
                                                     + e_s * float(dev.dvt_storage_v[row, stack, c]))
                    if q[r, el] > 0:   # RWL+: L cell -> RBL_L (stack 0), R cell -> RBL_R (stack 2)
                        u_l += one(0) if digit > 0 else share(0)
                        u_r += one(2) if digit < 0 else share(2)
                    else:              # RWL-: L cell -> RBL_R (stack 1), R cell -> RBL_L (stack 3)
                        u_r += one(1) if digit > 0 else share(1)
                        u_l += one(3) if digit < 0 else share(3)
            leak = 0.0 if chip.linear else p.leak1_units_per_unit * n1 + p.leak0_units_per_unit * (n_total - n1)
            g = {}
            for j in range(1, p.n_ramp_steps + 1):
                u_cal, u_ramp = ramp.u_cal_units[c], ramp.u_ramp_after_units[c, j]
                v_r = _curve(chip, u_r + _leaked_units(chip, leak, j, u_r, u_cal, "cal") + u_cal, curve)
                v_l = _curve(chip, u_l + _leaked_units(chip, leak, j, u_l, u_ramp, "ramp") + u_ramp, curve)
                if insitu is not None:  # the sense amplifier's in-situ correction, term by term
                    terms = [1.0, j - 1.0, 1.0 if j == 1 else 0.0, p.curve_v[0] - v_l, p.curve_v[0] - v_r]
                    v_l, v_r = (v_l + sum(c_ * x for c_, x in zip(insitu.coef_l_v, terms)),
                                v_r + sum(c_ * x for c_, x in zip(insitu.coef_r_v, terms)))
                g[j] = v_r - v_l - _offset(dev, c, 0.5 * (v_r + v_l))
            units[r, c] = u_l, u_r
            j0 = next((j for j in range(1, n + 1) if g[j] > 0), n + 1)
            margin[r, c] = min(abs(g[j]) for j in (j0 - 1, j0) if 1 <= j <= n)
            fire = j0
            if key is not None:
                fire = min(j0 + h, n + 1)
                for w in range(2 * h):
                    j = j0 - h + w
                    if not 1 <= j <= n:
                        continue
                    z = standard_normal_py(int(key), 0, r, c, w)
                    margin[r, c] = min(margin[r, c], abs(g[j] + p.sa_noise_sigma_v * z))
                    if g[j] + p.sa_noise_sigma_v * z > 0:
                        fire = j
                        break
            if enable is not None and not enable[r, c]:
                fire = n + 1   # disabled at the arbiter
            firing.append(fire)
        # arbiter: cycle by cycle, lower addresses first, stop at k grants
        granted = []
        k_row = k if enable is None else min(k, int(np.sum(enable[r])))
        stop = n if k_row else 0
        for j in range(1, n + 1):
            for c in range(n_keys):
                if firing[c] == j and len(granted) < k:
                    granted.append(c)
            if k_row and len(granted) >= k_row:
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
    assert same_rows.mean() > 0.5
    np.testing.assert_array_equal(fast.indices[same_rows], idx[same_rows])
    np.testing.assert_array_equal(fast.cycles[same_rows], cycles[same_rows])


def _case(seed, rows, n_keys, d, scale):
    rng = np.random.default_rng(seed)
    q = rng.integers(-scale, scale + 1, (rows, d)) * (rng.random((rows, d)) < 0.6)
    kl = rng.integers(-4, 5, (d, n_keys))
    return q, kl


# 6 rows: the MAC runs directly per row; 40 rows with 19 codes: through the code table
@pytest.mark.parametrize("seed,scale,rows", [(1, 9, 6), (2, 9, 40), (3, 9, 6), (4, 15, 6), (5, 15, 40)])
def test_fast_path_equals_reference_with_mismatch_and_noise(macro, seed, scale, rows):
    from topkima.behavioral.macro import runtime
    chip = macro.instance(np.random.default_rng(100 + seed))
    q, kl = _case(seed, rows=rows, n_keys=24, d=16, scale=scale)
    before = runtime.threads()
    runtime.set_threads(1)      # one block of rows: the code table is used when rows outnumber codes
    try:
        fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(seed))
    finally:
        runtime.set_threads(before)
    details = {}
    key = noise_key(np.random.default_rng(seed))          # the key the fast path drew
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu, key=key, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert len(np.unique(firing)) >= 8  # crossings spread over the ramp, not all saturated
    # the MAC phase itself: float32 sums against the reference's float64 sums
    u_l, u_r = chip.mac_units(q, kl)
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
    idx, cycles, firing = reference_topk(chip, q, kl, 3, insitu=macro.insitu, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert np.any(np.diff(firing[:, :6], axis=1) == 0)  # the tie really happened


def test_fast_path_equals_reference_with_masks(macro):
    # a causal mask: row r sees keys 0 … r + 3; the last rows see fewer than k keys
    chip = macro.instance(np.random.default_rng(7))
    q, kl = _case(11, rows=12, n_keys=14, d=16, scale=12)
    enable = np.arange(14)[None, :] <= np.arange(12)[:, None] + 3
    enable[0] = False                     # a row that sees nothing: not converted
    fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(3), key_mask=enable)
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu, key=noise_key(np.random.default_rng(3)),
                                         enable=enable, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert fast.cycles[0] == 0 and fast.energy_j[0] == 0 and np.all(fast.indices[0] == -1)
    assert np.all(fast.indices[1, 4:] == -1)   # 4 visible keys: one empty slot


def test_ideal_macro_equals_reference(macro):
    chip = macro.ideal()
    q, kl = _case(21, rows=30, n_keys=20, d=16, scale=15)
    fast = chip.topk(q, kl, k=4)
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 4, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)


def test_results_do_not_depend_on_threads_or_batching(macro):
    from topkima.behavioral.macro import runtime
    chip = macro.instance(np.random.default_rng(4))
    rng = np.random.default_rng(8)
    q = rng.integers(-20, 21, (3, 50, 32))
    kl = rng.integers(-7, 8, (3, 32, 90))
    mask = rng.random((3, 50, 90)) < 0.9
    before = runtime.threads()
    try:
        runs = []
        for n in (1, 2, 3):
            runtime.set_threads(n)
            runs.append(chip.topk(q, kl, k=5, rng=np.random.default_rng(1), key_mask=mask))
    finally:
        runtime.set_threads(before)
    for r in runs[1:]:
        for name in ("indices", "codes", "cycles", "energy_j", "firing_cycle"):
            np.testing.assert_array_equal(getattr(r, name), getattr(runs[0], name))
    # one batch element alone converts as it does inside the batch (its noise follows its place)
    alone = chip.topk(q[:1], kl[:1], k=5, rng=np.random.default_rng(1), key_mask=mask[:1])
    np.testing.assert_array_equal(alone.firing_cycle[0], runs[0].firing_cycle[0])
    np.testing.assert_array_equal(alone.energy_j[0], runs[0].energy_j[0])


def test_wide_noise_window_equals_reference():
    # σ × 8: the noise window spans several decisions on each side of the crossing
    macro = TopkimaMacro(load_calibration(), sigma_scale=8.0)
    chip = macro.instance(np.random.default_rng(12))
    assert chip.noise_half_window() >= 3
    q, kl = _case(13, rows=8, n_keys=24, d=16, scale=12)
    fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(4))
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu, key=noise_key(np.random.default_rng(4)),
                                         details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    quiet = chip.without_noise().topk(q, kl, k=5)
    assert np.mean(np.abs(fast.firing_cycle - quiet.firing_cycle) > 1) > 0.01   # the noise moves decisions > 1 cycle


@pytest.mark.parametrize("sigma_scale,seed,forced", [(2.0, 22, False), (5.0, 23, True)])
def test_four_decision_noise_window_equals_reference(sigma_scale, seed, forced, monkeypatch):
    """h = 2, a window of four decisions (a window chosen for the scores gives it at σ × 1): the kernels
    take its outer two decisions' margins in vector passes (adc._decide_four), the reference cycle by
    cycle. ``forced``: h held at 2 for both under σ × 5, so that the outer decisions (2 LSB below, 1
    above the crossing) fire often enough to be seen."""
    from topkima.behavioral.macro.chip import ChipInstance
    if forced:
        monkeypatch.setattr(ChipInstance, "noise_half_window", lambda self: 2)
    macro = TopkimaMacro(load_calibration(), sigma_scale=sigma_scale)
    chip = macro.instance(np.random.default_rng(seed))
    assert chip.noise_half_window() == 2
    q, kl = _case(seed, rows=40, n_keys=24, d=16, scale=12)
    fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(seed))
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu, key=noise_key(np.random.default_rng(seed)),
                                         details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    moved = fast.firing_cycle - chip.without_noise().topk(q, kl, k=5).firing_cycle
    assert np.any(moved == -1) and np.any(moved == 1)       # decisions on both sides of the crossing fire
    if forced:
        assert np.any(moved == -2)                          # and the first of the four


def test_saturated_bitlines_fire_at_the_first_crossing(macro):
    # dense full-range inputs drive RBL_L onto the flat end of the discharge curve, where leakage
    # on RBL_R makes g fall again over the ramp: the first crossing, not the last cycle, decides
    chip = macro.instance(np.random.default_rng(1)).without_noise()
    rng = np.random.default_rng(11)
    q = rng.integers(-31, 32, (64, 64)) * (rng.random((64, 64)) < rng.random())
    kl = rng.integers(-7, 8, (64, 128))
    enable = np.zeros((1, 128), bool)
    enable[0, [14, 65]] = True
    fast = chip.topk(q[41:42], kl, k=1, key_mask=enable)
    details = {}
    idx, cycles, firing = reference_topk(chip, q[41:42], kl, 1, insitu=macro.insitu, enable=enable, details=details)
    assert idx.tolist() == [[65]]                 # the row's best key fires early, then g falls
    assert_same_conversions(fast, idx, cycles, firing, details)
    # and over whole dense rows
    rows = q[[3, 41]]
    fast = chip.topk(rows, kl, k=5)
    details = {}
    idx, cycles, firing = reference_topk(chip, rows, kl, 5, insitu=macro.insitu, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)


@pytest.mark.parametrize("sigma_scale", [1.0, 30.0])
def test_saturating_rows_with_noise_equal_reference(macro, sigma_scale):
    """Dense full-range rows under the default window, with mismatch and noise: most columns end on
    the flat end of the discharge curve and many fire in cycle 1, some with g(1) inside the noise's
    reach (their noise drawn), some far above it (the kernels skip the draw and the scan). Every
    column's firing cycle, the kept keys and the stop equal the slow reference, noise replayed; with
    the calibrated σ (a noise window of two decisions) and 30 times it (a window of many)."""
    if sigma_scale != 1.0:
        macro = TopkimaMacro(load_calibration(), sigma_scale=sigma_scale)
        assert macro.nominal().noise_half_window() > 1
    chip = macro.instance(np.random.default_rng(7))
    rng = np.random.default_rng(13)
    q = rng.integers(-31, 32, (12, 64))
    kl = rng.integers(-7, 8, (64, 96))
    fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(3))
    details = {}
    key = noise_key(np.random.default_rng(3))
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu, key=key, details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert np.mean(firing == 1) > 0.2 and np.mean(firing > 1) > 0.2      # both kinds of column occur


def test_crossing_search_equals_a_plain_scan_on_dense_inputs():
    # full-range inputs over several ADC windows and σ: many bitlines end on the flat end of the
    # discharge curve, where g need not rise; the search must still find the first crossing
    import numba
    from topkima.behavioral import AdcRange
    from topkima.behavioral.macro import adc
    from topkima.behavioral.macro.convert import fire_comparators

    @numba.njit
    def both(bl, ramp, u_l, u_r, leak, headroom, fast, scan):
        enabled = np.ones((1, u_l.shape[1]), dtype=np.bool_)
        lists = np.zeros((7, u_l.size), dtype=np.int64)
        # the kernels' dispatch: the search where g surely rises, the scan elsewhere
        n = u_l.shape[1]
        fire_comparators(bl, ramp, np.hstack((u_l, u_r)), n, n, leak, headroom, enabled, True, 32, 8.0, 1, 0.0,
                         np.uint64(0), 0, 0, 0, fast, np.zeros(u_l.shape[0], np.int64), lists[:4], np.zeros((4, u_l.size)),
                         lists[4:6], lists[6], np.zeros(u_l.shape[0] + 1, np.int64))
        for r in range(u_l.shape[0]):
            for c in range(u_l.shape[1]):
                scan[r, c] = 33
                for j in range(1, 33):     # the definition: the first cycle with g > 0
                    if adc.decision_margin_v(bl, ramp, c, j, u_l[r, c], u_r[r, c], leak[c]) > 0.0:
                        scan[r, c] = j
                        break

    cal = load_calibration()
    differ = total = 0
    # the last: leakage 300× the chip's, where the rise bound's leakage terms dominate
    for sigma_scale, window, leak_scale in ((1.0, None, 1.0), (4.0, AdcRange(16, 2, 1), 1.0),
                                            (1.0, AdcRange(8, 6, 3), 1.0), (1.0, None, 300.0)):
        base = TopkimaMacro(cal, sigma_scale=sigma_scale)
        chip = (base if window is None else base.with_adc_range(window)).instance(np.random.default_rng(1))
        rng = np.random.default_rng(2)
        q = rng.integers(-31, 32, (128, 64)) * (rng.random((128, 64)) < rng.random((128, 1)))
        kl = rng.integers(-7, 8, (64, 256))
        u_l, u_r = chip.mac_units(q, kl)
        fast, scan = np.zeros(u_l.shape, np.int64), np.zeros(u_l.shape, np.int64)
        both(chip.bitlines, chip.ramp(0), u_l, u_r, leak_scale * chip.leak_units_per_unit(kl),
             adc.margin_headroom_v(chip.bitlines, chip.ramp(0).devices, 32, chip.ramp(0).u_ramp_after_units),
             fast, scan)
        differ += int(np.sum(fast != scan))
        total += fast.size
        assert 0.1 < np.mean(scan == 33) < 0.9 and np.mean(scan == 1) > 0.05   # both ends and the middle occur
    assert differ == 0, f"{differ} of {total} conversions"


def test_margin_ceiling_bounds_every_decision():
    # the comparators skip a column whose ceiling lies Z_MAX·σ below the threshold; the ceiling must
    # bound g at every cycle (the slow obvious reference: g evaluated at each), on the flat end of
    # the curve, with large leakage, and under windows that move the ramp and calibration
    import numba
    from topkima.behavioral import AdcRange
    from topkima.behavioral.macro import adc

    @numba.njit
    def ceiling_and_max(bl, ramp, u_l, u_r, leak, headroom, n_steps, ceiling, g_max):
        for r in range(u_l.shape[0]):
            for c in range(u_l.shape[1]):
                ceiling[r, c] = adc.margin_ceiling_v(bl, ramp, c, u_l[r, c], u_r[r, c], leak[c], n_steps, headroom[c])
                g_max[r, c] = -np.inf
                for j in range(1, n_steps + 1):
                    g_max[r, c] = max(g_max[r, c], adc.decision_margin_v(bl, ramp, c, j, u_l[r, c], u_r[r, c], leak[c]))

    cal = load_calibration()
    screened = total = 0
    # leakage 0 leaves the ceiling no leakage slack on rising columns; a second chip, mismatch × 3
    for window, leak_scale, seed, sigma_scale in ((None, 1.0, 3, 1.0), (AdcRange(16, 2, 1), 1.0, 3, 1.0),
                                                 (AdcRange(8, 6, 3), 1.0, 3, 1.0), (None, 300.0, 3, 1.0),
                                                 (None, 0.0, 3, 1.0), (AdcRange(16, 2, 1), 0.0, 3, 1.0),
                                                 (None, 1.0, 5, 3.0), (AdcRange(8, 6, 3), 0.0, 5, 3.0)):
        base = TopkimaMacro(cal, sigma_scale=sigma_scale)
        chip = (base if window is None else base.with_adc_range(window)).instance(np.random.default_rng(seed))
        rng = np.random.default_rng(4)
        q = rng.integers(-31, 32, (96, 64)) * (rng.random((96, 64)) < rng.random((96, 1)))
        kl = rng.integers(-7, 8, (64, 256))
        u_l, u_r = chip.mac_units(q, kl)
        ceiling, g_max = np.zeros(u_l.shape), np.zeros(u_l.shape)
        n_steps = chip.params.n_ramp_steps
        ceiling_and_max(chip.bitlines, chip.ramp(0), u_l, u_r, leak_scale * chip.leak_units_per_unit(kl),
                        adc.margin_headroom_v(chip.bitlines, chip.ramp(0).devices, n_steps, chip.ramp(0).u_ramp_after_units),
                        n_steps, ceiling, g_max)
        assert np.all(g_max <= ceiling), f"ceiling below g by {np.max(g_max - ceiling):.3g} V"
        screened += int(np.sum(ceiling <= -Z_MAX * chip.params.sa_noise_sigma_v))
        total += ceiling.size
    assert screened > 0.2 * total       # the screen does skip columns


@pytest.mark.parametrize("artefact", ["default_calibration.json", "sky130_calibration.json", "ss_calibration.json"])
def test_the_screen_changes_no_firing_cycle(artefact):
    # the comparators with the margin ceiling against the same kernel with no ceiling (+inf headroom:
    # every column on the full path), each committed artefact, comparator noise 0, σ_n and 30 σ_n,
    # random column masks, units over the whole curve and beyond it, leakage ×1, ×0 and ×−1 (the
    # last takes the full path: the ceiling assumes leakage lowers the bitlines)
    import numba
    from pathlib import Path
    from topkima.behavioral.macro import adc
    from topkima.behavioral.macro.convert import fire_comparators

    @numba.njit
    def both(bl, ramp, u_l, u_r, leak, headroom, enabled, sigma, with_screen, without) -> int:
        n = u_l.shape[1]
        lists, g_last, n_enabled = np.zeros((7, u_l.size), np.int64), np.zeros((4, u_l.size)), np.zeros(u_l.shape[0], np.int64)
        listed_start = np.zeros(u_l.shape[0] + 1, np.int64)
        inf = np.full(n, np.inf)
        screened = 0
        for r in range(u_l.shape[0]):
            for c in range(n):
                if enabled[r, c] and leak[c] >= 0.0 and adc.margin_ceiling_v(
                        bl, ramp, c, u_l[r, c], u_r[r, c], leak[c], 32, headroom[c]) <= -Z_MAX * sigma:
                    screened += 1
        for ceiling, out in ((headroom, with_screen), (inf, without)):
            fire_comparators(bl, ramp, np.hstack((u_l, u_r)), n, n, leak, ceiling, enabled, False, 32, 8.0, 3, sigma,
                             np.uint64(7), 0, 0, 0, out, n_enabled, lists[:4], g_last, lists[4:6], lists[6], listed_start)
        return screened

    cal = load_calibration(Path(__file__).parents[2] / "calibration" / artefact)
    chip = TopkimaMacro(cal).instance(np.random.default_rng(11))
    bl, ramp, p = chip.bitlines, chip.ramp(0), chip.params
    n_cols, rows = chip.n_cols, 64
    rng = np.random.default_rng(12)
    top_units = (bl.last_index / bl.points_per_unit) * 1.1       # beyond the curve's last point
    u_r = rng.uniform(0.0, top_units, (rows, n_cols))
    u_l = np.where(rng.random((rows, n_cols)) < 0.5, u_r + rng.normal(0.0, 40.0, (rows, n_cols)),
                   rng.uniform(0.0, top_units, (rows, n_cols))).clip(0.0)
    enabled = rng.random((rows, n_cols)) < 0.8
    leak0 = np.asarray(chip.leak_units_per_unit(rng.integers(-7, 8, (chip.n_elements, n_cols))), float)
    headroom = adc.margin_headroom_v(bl, ramp.devices, p.n_ramp_steps, ramp.u_ramp_after_units)
    assert np.all(np.isfinite(headroom))
    for sigma in (0.0, p.sa_noise_sigma_v, 30 * p.sa_noise_sigma_v):
        for leak in (leak0, 0.0 * leak0, -leak0):
            a = np.full((rows, n_cols), -7, np.int64)
            b = np.full((rows, n_cols), -7, np.int64)
            screened = both(bl, ramp, u_l, u_r, np.ascontiguousarray(leak), headroom, enabled, sigma, a, b)
            assert np.array_equal(a, b), (sigma, float(leak[0]))
            assert (screened > 0.1 * enabled.sum()) == (leak[0] >= 0.0)    # the screen does settle columns
            assert np.all(a[~enabled] == -7)            # a disabled column is left as it is


def test_margin_ceiling_is_off_where_its_premises_fail():
    # a curve that rises somewhere, a negative relative leakage, sense instants out of order, a ramp
    # step that lowers the units, or an in-situ correction that flips a bitline's sign: no ceiling
    # (+inf), every column takes the
    # full path; the chip's own tables: a finite ceiling
    from topkima.behavioral.macro import adc
    chip = TopkimaMacro(load_calibration()).instance(np.random.default_rng(0))
    bl, ramp, n = chip.bitlines, chip.ramp(0), chip.params.n_ramp_steps
    ok = adc.margin_headroom_v(bl, ramp.devices, n, ramp.u_ramp_after_units)
    assert np.all(np.isfinite(ok))
    bumped = bl.curve_v.copy()
    bumped[100] = bumped[99] + 1e-6
    falling = ramp.u_ramp_after_units.copy()
    falling[5, 10] = falling[5, 9] - 1e-3
    late = bl.t_sense_units.copy()
    late[3] = late[4] + 1.0
    for model, u_ramp in ((bl._replace(curve_v=bumped), ramp.u_ramp_after_units),
                          (bl._replace(leak_rel=bl.leak_rel - 2.0), ramp.u_ramp_after_units),
                          (bl._replace(t_sense_units=late), ramp.u_ramp_after_units),
                          (bl, falling), (bl._replace(keep_l=bl.mix_r - 0.1), ramp.u_ramp_after_units)):
        assert np.all(np.isinf(adc.margin_headroom_v(model, ramp.devices, n, u_ramp)))


@pytest.mark.parametrize("n_steps,seed", [(64, 31), (128, 32)])
def test_longer_ramp_chip_equals_reference(n_steps, seed):
    # a what-if macro with N ramp + N calibration replica rows (topkima.studies.circuit_whatif):
    # the kernels take the step count from the artefact; the reference loops over all N cycles
    from topkima.behavioral import choose_adc_range
    from topkima.behavioral.macro.ramp_limits import RampLimits
    from topkima.studies.circuit_whatif import variant_calibration
    macro = TopkimaMacro(variant_calibration(n_ramp_steps=n_steps))
    limits = RampLimits.of_params(macro.params)
    assert limits == RampLimits(n_steps, n_steps, 6, 4)
    q, kl = _case(seed, rows=8, n_keys=24, d=16, scale=31)
    window, scale = choose_adc_range(q @ kl, 5, top_quantile=1.0, bottom_quantile=0.0, limits=limits)
    q = np.rint(q * scale).astype(int)
    assert window.n_cal > 32 or window.t_ramp_units * n_steps > 128     # a window the 32-step column cannot set
    chip = macro.with_adc_range(window).instance(np.random.default_rng(seed))
    fast = chip.topk(q, kl, k=5, rng=np.random.default_rng(seed))
    assert fast.n_ramp_steps == n_steps
    details = {}
    idx, cycles, firing = reference_topk(chip, q, kl, 5, insitu=macro.insitu,
                                         key=noise_key(np.random.default_rng(seed)), details=details)
    assert_same_conversions(fast, idx, cycles, firing, details)
    assert np.any((firing > 32) & (firing <= n_steps)) and len(np.unique(firing)) >= 12   # crossings past cycle 32
    granted = fast.indices >= 0
    fired_in = np.take_along_axis(fast.firing_cycle, np.maximum(fast.indices, 0), axis=-1)
    assert np.all(fast.codes[granted] == n_steps - fired_in[granted])      # a ⌈log₂ N⌉-bit code
