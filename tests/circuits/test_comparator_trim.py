"""The comparator's offset trim (circuits/comparator_trim.py) in real ngspice, and its path into a chip.

In ngspice: a trim capacitor on the latch's integration node xp raises the offset (on xn it lowers it,
by as much), by a few mV per fF; the power-up search brings an instance's offset at the trim's
common mode to within one trim step above zero. The search itself is checked against trying every
code. The artefact path: the section's linear model is what the ``offset-trimmed`` chip reads, and
an artefact without it is refused with the command that adds it. ~15 s.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from topkima.circuits import comparator_trim as ct
from topkima.circuits.comparator import DEVICES
from topkima.circuits.comparator_bench import OFFSET_VCM_V, decides_outp, offset_sample


def _offset_with(lines, vcm=0.35):
    from topkima.circuits.comparator_bench import bisect_flip
    vos, _ = bisect_flip(lambda vd: decides_outp(vcm, vd, {}, 1.0, 27.0, 2e-15, extra=lines), 0.032, 20e-6)
    return vos


def test_trim_capacitors_on_the_latch_nodes_move_the_offset_in_ngspice():
    base = _offset_with([])
    up = _offset_with(ct.trim_lines(10))      # 1 fF on xsa.xp
    down = _offset_with(ct.trim_lines(-10))   # 1 fF on xsa.xn
    assert abs(base) < 0.5e-3                 # a nominal latch is balanced
    assert 2e-3 < up - base < 10e-3           # a few mV per fF: the flattened node is the latch's own
    assert up - base == pytest.approx(base - down, rel=0.05)


def test_trim_lines_refuse_codes_outside_the_dac():
    assert ct.trim_lines(0) == []
    for bad in (ct.TRIM_CODE_MAX + 1, -ct.TRIM_CODE_MAX - 1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="trim code"):
            ct.trim_lines(bad)


@pytest.mark.parametrize("threshold", [-40.0, -31.0, -30.5, -3.2, 0.0, 0.7, 17.0, 30.5, 31.0, 45.0])
def test_the_power_up_search_finds_the_code_trying_every_code_would(threshold):
    # a monotone latch: the offset at code c is c - threshold; outp wins at zero input while it is below 0
    decide = lambda c: c - threshold < 0   # noqa: E731
    brute = next((c for c in range(-ct.TRIM_CODE_MAX, ct.TRIM_CODE_MAX + 1) if not decide(c)), ct.TRIM_CODE_MAX)
    code, n = ct.trim_code(decide)
    assert code == brute and n <= 6


def test_a_trimmed_instance_keeps_a_residual_of_about_one_step_at_the_trim_common_mode():
    # a strongly offset instance: the input pair's threshold apart by 8 mV, about 2σ of the pair
    delvto = {d.name: 0.0 for d in DEVICES}
    delvto["mip"] = 0.008
    before = offset_sample(delvto, list(OFFSET_VCM_V))["offset_v"]
    r = ct.trim_sample(delvto)
    assert not r["clipped"] and r["code"] != 0 and r["n_decisions"] <= 6
    i = OFFSET_VCM_V.index(ct.VCM_TRIM_V)
    step_v = abs(before[i]) / abs(r["code"])          # the trim's weight per code near this code
    assert 0.0 <= r["residual_offset_v"][i] <= 1.5 * step_v
    assert all(abs(a) < abs(b) for a, b in zip(r["residual_offset_v"], before))


def _synthetic_section(cal, n=40, seed=0):
    """A trim section whose residuals are a known linear function of the draws (for the data path only)."""
    from topkima.calibration.offset_trim import artefact_section
    rng = np.random.default_rng(seed)
    lin = cal.data["comparator"]["offset"]["linear_model"]
    draws = {name: rng.normal(0, 0.003, n) for name in lin["devices"]}
    sens = rng.normal(0, 0.1, (len(lin["vcm_v"]), len(lin["devices"])))
    x = np.column_stack([draws[name] for name in lin["devices"]])
    residual = 2e-4 + x @ sens.T + rng.normal(0, 1e-6, (n, len(lin["vcm_v"])))
    results = [{"code": 0, "clipped": False, "vcm_v": list(lin["vcm_v"]), "residual_offset_v": row.tolist(),
                "n_decisions": 6} for row in residual]
    return artefact_section(results, draws, lin), sens


def test_the_offset_trimmed_chip_reads_the_sections_linear_model():
    from topkima.behavioral.params import params_from_calibration
    from topkima.calibration import Calibration, load_calibration
    from topkima.calibration.artefact import ArtefactError
    from topkima.studies.circuit_whatif import variant_calibration, variant_knobs
    cal = load_calibration()
    with pytest.raises(ValueError, match="topkima calibrate-trim"):
        variant_calibration(cal, comparator_trim=True)
    section, sens = _synthetic_section(cal)
    np.testing.assert_allclose(section["linear_model"]["sensitivity_v_per_v"], sens, atol=2e-3)
    data = copy.deepcopy(cal.data)
    data["comparator"]["offset_trim"] = section
    trimmed = variant_calibration(Calibration(data), **variant_knobs("offset-trimmed"))
    p = params_from_calibration(trimmed)
    order = np.argsort(section["linear_model"]["vcm_v"])
    np.testing.assert_allclose(p.sa_intercept_v, np.asarray(section["linear_model"]["intercept_v"])[order])
    np.testing.assert_allclose(p.sa_sensitivity, np.asarray(section["linear_model"]["sensitivity_v_per_v"])[order])
    bad = copy.deepcopy(data)
    bad["comparator"]["offset_trim"]["linear_model"]["devices"] = ["mip"]
    with pytest.raises(ArtefactError, match="offset_trim.linear_model"):
        Calibration(bad)
