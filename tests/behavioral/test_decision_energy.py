"""The sense amplifier's energy per decision: a line in the common mode plus the comparator bench's
overdrive term κ·ln(V_ref / |V_R − V_L|) (behavioral/params.py: decision_energy_overdrive)."""
import copy

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro.bitline import overdrive_log, overdrive_log_sum
from topkima.behavioral.params import params_from_calibration
from topkima.calibration import Calibration, load_calibration


@pytest.fixture(scope="module")
def cal():
    return load_calibration()


@pytest.fixture(scope="module")
def macro(cal):
    return TopkimaMacro(cal)


def test_the_overdrive_term_reproduces_the_comparator_bench(cal):
    # the bench (ideal sources, CM 0.35 V): energy per decision at 0.1, 1, 10, 100 mV of overdrive
    p = params_from_calibration(cal)
    bench = cal.comparator["energy"]
    od, e = np.asarray(bench["overdrive_v"]), np.asarray(bench["e_per_decision_j"])
    model = e[list(od).index(p.sa_overdrive_ref_v)] + p.sa_e_per_ln_overdrive_j * overdrive_log(p, od)
    np.testing.assert_allclose(model, e, atol=0.6e-15)      # a line in ln(overdrive), within 0.6 fJ
    assert 2e-15 < p.sa_e_per_ln_overdrive_j < 3.5e-15      # ~6 fJ per decade


def test_the_term_explains_the_in_situ_runs_energy(cal, macro):
    # the 12 nominal column conversions with the real latch: the line in CM alone left ~2 fJ rms per
    # decision; with the bench's overdrive term (κ not fitted to them) a fraction of that
    runs = macro.params.insitu[0]
    p, ins = macro.params, macro.insitu
    resid = []
    for run in runs:
        v_l, v_r = np.asarray(run["v_rbl_l_at_sa_clk_v"]), np.asarray(run["v_rbl_r_at_sa_clk_v"])
        e = ins.e_per_decision_j(0.5 * (v_l + v_r)) + p.sa_e_per_ln_overdrive_j * overdrive_log(p, v_r - v_l)
        resid.append(e.mean() - run["e_sa_32_decisions_j"] / v_l.size)
    assert np.sqrt(np.mean(np.square(resid))) < 0.5e-15


def test_an_artefact_without_the_bench_table_keeps_the_line_alone(cal):
    data = copy.deepcopy(cal.data)
    del data["comparator"]["energy"]["overdrive_v"]
    p = params_from_calibration(Calibration(data))
    assert p.sa_e_per_ln_overdrive_j == 0.0
    chip = TopkimaMacro(Calibration(data)).nominal()
    assert chip.e_per_decision_j(0.3, 0.05) == chip.e_per_decision_j(0.3)


@pytest.mark.parametrize("d_first, d_last, n", [(-0.03, 0.0004, 14), (-0.2, -0.15, 32), (0.001, 0.002, 3),
                                                (-0.0005, 0.03, 31), (-0.01, -0.01, 5), (0.004, 0.004, 1)])
def test_the_kernels_tabulated_sum_agrees_with_a_fine_average_over_the_sweep(macro, d_first, d_last, n):
    # fast path: the sum over the decisions from the term's tabulated integral, each decision's term the
    # mean over the interval it stands for; slow reference: a fine average of the logarithm itself
    bl, p = macro.nominal().bitlines, macro.params
    fast = overdrive_log_sum(bl, d_first, d_last, n) / n
    step = (d_last - d_first) / (n - 1) if n > 1 else 0.0
    if n == 1 or step == 0.0:
        assert fast == pytest.approx(float(overdrive_log(p, d_first)))
        return
    fine = np.linspace(d_first - step / 2, d_last + step / 2, 200001)
    assert fast == pytest.approx(float(overdrive_log(p, fine).mean()), abs=2e-3)


@pytest.mark.parametrize("change, field", [
    (lambda en: en.update(overdrive_v=[0.01, 0.001, 0.1, 0.0001]), "overdrive_v"),
    (lambda en: en.update(e_per_decision_j=[1e-13] * 3), "e_per_decision_j"),
    (lambda en: en.update(e_per_decision_j=[1e-13, float("nan"), 1e-13, 1e-13]), "e_per_decision_j"),
    (lambda en: en.update(typical_overdrive_v=0.0), "typical_overdrive_v"),
    (lambda en: en.update(typical_overdrive_v=float("inf")), "typical_overdrive_v"),
])
def test_a_bad_bench_table_is_refused_naming_it(cal, change, field):
    from topkima.calibration.artefact import ArtefactError
    data = copy.deepcopy(cal.data)
    change(data["comparator"]["energy"])
    with pytest.raises(ArtefactError, match=f"comparator.energy.{field}"):
        Calibration(data)


@pytest.mark.parametrize("leak_scale, tolerance", [(0.0, 0.003), (1.0, 0.005)])
def test_the_row_kernels_overdrive_energy_equals_the_sum_over_each_columns_decisions(macro, leak_scale, tolerance):
    """Fast path (`row_energy_j`: per column the tabulated sum over a linear sweep from its first
    to its last decision) against the slow obvious reference: κ·Σ over every decision a column makes
    (cycles 1 … min(firing, stop)) of ln(V_ref / |V_R − V_L|) at that decision's sense instant; without
    leakage, and with the leakage of a column of zero keys (the smallest a real column has)."""
    from topkima.behavioral.macro.adc import bitlines_at, margin_headroom_v
    from topkima.behavioral.macro.convert import fire_comparators
    from topkima.behavioral.macro.energy import row_energy_j
    chip = macro.nominal()
    bl, ramp, em, p = chip.bitlines, chip.ramp(0), chip.energy, macro.params
    n, n_steps = 96, p.n_ramp_steps
    rng = np.random.default_rng(5)
    top = ramp.u_cal_units[0]
    u_r = rng.uniform(0.0, 200.0, n)
    u_l = u_r + rng.uniform(top - 130.0, top + 10.0, n)     # crossings spread over the ramp, some never
    leak_zero_keys = float(np.asarray(chip.leak_units_per_unit(np.zeros((1, chip.n_cols), dtype=np.int64))).ravel()[0])
    assert leak_zero_keys > 0.0
    leak = np.full(n, leak_scale * leak_zero_keys)
    t_clk_units = p.t_clk_ima_s / p.t_unit_s
    enabled = np.ones(n, dtype=np.bool_)
    firing = np.zeros(n, dtype=np.int64)       # the kernels' firing cycles, noiseless
    headroom = margin_headroom_v(bl, ramp.devices, n_steps, ramp.u_ramp_after_units)[:n]
    lists = np.zeros((7, n), dtype=np.int64)
    fire_comparators(bl, ramp, np.concatenate((u_l, u_r))[None], n, n, leak, headroom, enabled[None], False, n_steps,
                     t_clk_units, 1, 0.0, np.uint64(0), 0, 0, 0, firing[None], np.zeros(1, dtype=np.int64), lists[:4],
                     np.zeros((4, n)), lists[4:6], lists[6], np.zeros(2, dtype=np.int64))
    scratch = np.zeros((7, n))
    for stop in (n_steps // 2, n_steps):        # columns firing before the stop, after it, never
        with_term = row_energy_j(bl, ramp, em, u_l, u_r, leak, firing, enabled, stop, 10, 5, scratch)
        without = row_energy_j(bl._replace(e_decision_per_ln_od_j=0.0), ramp, em, u_l, u_r, leak, firing, enabled,
                               stop, 10, 5, scratch)
        fast = with_term - without
        terms = [bl.e_decision_per_ln_od_j * float(overdrive_log(p, np.subtract(*bitlines_at(bl, ramp, c, j, u_l[c],
                                                                                            u_r[c], leak[c])[::-1])))
                 for c in range(n) for j in range(1, min(firing[c], stop) + 1)]
        slow, size = sum(terms), sum(abs(t) for t in terms)
        assert 1 <= stop <= n_steps and len(terms) > n
        # the linear sweep's error, summed over the row, against the term's size (Σ |term|): 0.13–0.17 %
        # without leakage; the leakage at each bitline's level bends V_R − V_L a little (0.30–0.38 % with
        # a zero-key column's leakage, 2 % at five times that: a reviewer's measurement)
        assert abs(fast - slow) <= tolerance * size, (fast, slow, size)


def _energy_rows(macro, n=200):
    """(chip, ramp, leak) and rows of (u_l, u_r, firing, enabled, stop) covering the row kernel's cases:
    columns that fire before the stop, at it, after it, never; disabled columns; stops 1, 2, mid, last."""
    chip = macro.nominal()
    ramp, n_steps = chip.ramp(0), macro.params.n_ramp_steps
    rng = np.random.default_rng(11)
    top = ramp.u_cal_units[0]
    leak = np.asarray(chip.leak_units_per_unit(rng.integers(-7, 8, (macro.params.n_elements, chip.n_cols))),
                      float)[:n]
    rows = []
    for stop in (1, 2, n_steps // 2, n_steps):
        for with_mask in (False, True):
            u_r = rng.uniform(0.0, 200.0, n)
            u_l = u_r + rng.uniform(top - 130.0, top + 10.0, n)
            firing = rng.integers(1, n_steps + 2, n)
            enabled = rng.random(n) < 0.8 if with_mask else np.ones(n, dtype=np.bool_)
            rows.append((u_l, u_r, firing, enabled, stop))
    return chip, ramp, leak, rows


def test_row_energy_equals_its_formula_column_by_column(macro):
    """`row_energy_j` (vector passes over the columns, then the sums) against the module docstring's
    formula evaluated one column at a time in Python: restore at the stop, wordline pulses, per
    decision a + b·CM (CM the mean of the bitlines at cycle 1 and at the stop) plus the overdrive
    sum from cycle 1 to the column's last decision, and the digital side."""
    from topkima.behavioral.macro.adc import bitlines_at
    from topkima.behavioral.macro.energy import row_energy_j
    chip, ramp, leak, rows = _energy_rows(macro)
    bl, em = chip.bitlines, chip.energy
    n_pulsed, n_grants = 17, 5
    for u_l, u_r, firing, enabled, stop in rows:
        n = u_l.size
        fast = row_energy_j(bl, ramp, em, u_l, u_r, leak, firing, enabled, stop, n_pulsed, n_grants, np.zeros((7, n)))
        j_end = max(stop, 1)
        v_sum, e_dec = 0.0, 0.0
        for c in range(n):
            v_l, v_r = bitlines_at(bl, ramp, c, j_end, u_l[c], u_r[c], leak[c])
            v_l1, v_r1 = bitlines_at(bl, ramp, c, 1, u_l[c], u_r[c], leak[c])
            v_sum += v_l + v_r
            clocked = min(firing[c], stop) if enabled[c] else 0
            if clocked == 0:
                continue
            cm = (v_l1 + v_r1 + v_l + v_r) / 4
            v_lc, v_rc = bitlines_at(bl, ramp, c, clocked, u_l[c], u_r[c], leak[c])
            e_dec += clocked * (bl.e_decision_at_0_j + bl.e_decision_per_v * cm)
            e_dec += bl.e_decision_per_ln_od_j * overdrive_log_sum(bl, v_r1 - v_l1, v_rc - v_lc, clocked)
        slow = (em.restore_j_per_v * (2 * n * em.v_precharged_v - v_sum)
                + (n_pulsed * em.n_scales + em.n_cal + stop) * n * em.e_wordline_pulse_j + e_dec
                + stop * em.e_per_count_j + min(n_grants, n) * em.e_per_grant_j)
        assert fast == pytest.approx(slow, rel=1e-12), (stop, fast, slow)


def test_row_energy_is_bit_identical_without_noalias(macro):
    """The row kernel is compiled with numba's ``noalias`` flag (runtime.NO_OVERLAP_KERNEL: its arrays
    never overlap, so LLVM may run its column passes as vector gathers). Compiled afresh (not from the
    on-disk cache, whose key ignores compiler flags) with and without the flag: the flag reaches the
    array arguments, and the energies are the same bit for bit (the flag changes how, not what)."""
    import numba

    from topkima.behavioral.macro import energy, runtime
    assert runtime.NO_OVERLAP_KERNEL.get("noalias") is True, "this numba lost its noalias flag: kernels run slower"
    fresh = numba.njit(**dict(runtime.NO_OVERLAP_KERNEL, cache=False))(energy.row_energy_j.py_func)
    plain = numba.njit(**dict(runtime.KERNEL, cache=False))(energy.row_energy_j.py_func)
    chip, ramp, leak, rows = _energy_rows(macro)
    for u_l, u_r, firing, enabled, stop in rows:
        args = (chip.bitlines, ramp, chip.energy, u_l.astype(np.float32), u_r.astype(np.float32), leak, firing, enabled,
                stop, 17, 5)
        e = energy.row_energy_j(*args, np.zeros((7, u_l.size)))
        assert e == fresh(*args, np.zeros((7, u_l.size))) == plain(*args, np.zeros((7, u_l.size))), stop

    def noalias_attributes(f):
        (ir,) = f.inspect_llvm().values()
        head = next(line for line in ir.splitlines() if line.startswith("define") and "row_energy_j" in line)
        return head.count("noalias")
    # every array's pointers carry it (the return and exception slots have it either way)
    assert noalias_attributes(fresh) > 10 * noalias_attributes(plain) > 0


def test_row_energy_where_the_bitlines_do_not_move(macro):
    """A column whose V_R − V_L is the same at cycle 1 and at the stop (both bitlines on the flat end
    of the discharge curve, no leakage, no in-situ drift): its overdrive term is its own decisions'
    term (``overdrive_log_sum``'s other case), not the vector pass's 0/0."""
    from topkima.behavioral.macro.adc import bitlines_at
    from topkima.behavioral.macro.energy import row_energy_j
    chip = macro.nominal()
    ramp, em, n_steps = chip.ramp(0), chip.energy, macro.params.n_ramp_steps
    bl = chip.bitlines._replace(offset_l_v=np.zeros_like(chip.bitlines.offset_l_v),
                                offset_r_v=np.zeros_like(chip.bitlines.offset_r_v))
    n = 8
    far = 10.0 * bl.last_index / bl.points_per_unit          # past the curve's end: f is flat there
    u_l, u_r = np.full(n, far), np.full(n, far + 1.0)
    leak = np.zeros(n)
    enabled = np.ones(n, dtype=np.bool_)
    firing = np.full(n, n_steps + 1)
    stop = n_steps // 2
    d = [np.subtract(*bitlines_at(bl, ramp, 0, j, far, far + 1.0, 0.0)[::-1]) for j in (1, stop)]
    assert d[0] == d[1]                                     # the case under test
    e = row_energy_j(bl, ramp, em, u_l, u_r, leak, firing, enabled, stop, 3, 5, np.zeros((7, n)))
    e_without = row_energy_j(bl._replace(e_decision_per_ln_od_j=0.0), ramp, em, u_l, u_r, leak, firing, enabled, stop,
                             3, 5, np.zeros((7, n)))
    assert np.isfinite(e)
    expected = n * bl.e_decision_per_ln_od_j * overdrive_log_sum(bl, d[0], d[1], stop)
    assert e - e_without == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(n * bl.e_decision_per_ln_od_j * stop * np.log(bl.od_ref_v / max(
        min(abs(d[0]), bl.od_max_v), bl.od_min_v)), rel=1e-12)


def test_ln_in_place_equals_numpy_log():
    """The energy pass's vectorisable logarithm (exponent from the bits, a table of 256 reciprocals,
    the series of ln(1 + ε)) against ``numpy.log``: random values over 1e-300 … 1e300, the powers of two
    and the floats just below them, and values over 0.5 … 2 densely, where ln x is small (absolute error
    there, relative beyond |ln x| = 1)."""
    import numba

    from topkima.behavioral.macro.bitline import ln_in_place

    @numba.njit
    def ln(x):
        y = x.copy()
        ln_in_place(y, np.zeros_like(y))
        return y

    rng = np.random.default_rng(3)
    powers = 2.0 ** np.arange(-60, 61)
    x = np.concatenate([np.exp(rng.uniform(np.log(1e-300), np.log(1e300), 100_000)), powers,
                        np.nextafter(powers, 0.0), rng.uniform(0.5, 2.0, 200_000), np.linspace(0.3, 3.0, 100_001)])
    got, want = ln(x), np.log(x)
    near = np.abs(want) <= 1.0
    assert np.max(np.abs(got - want)[near]) < 1e-15
    assert np.max(np.abs(got - want)[~near] / np.abs(want[~near])) < 3e-15
    assert abs(ln(np.array([1.0]))[0]) < 1e-18       # (the table's residue at m = 1)


def test_bitline_model_refuses_overdrives_outside_the_logarithms_domain(macro):
    from dataclasses import replace

    from topkima.behavioral.macro.bitline import bitline_model
    p = macro.params
    for bad in (dict(sa_overdrive_min_v=0.0), dict(sa_overdrive_ref_v=-0.01), dict(sa_overdrive_max_v=float("nan")),
                dict(sa_overdrive_min_v=0.2), dict(sa_overdrive_ref_v=1e-310)):
        with pytest.raises(ValueError, match="sa_overdrive"):
            bitline_model(replace(p, **bad), p.curve_v, None)
    bitline_model(p, p.curve_v, None)       # the committed artefact's are fine
