"""What-if chips (issue 14 item 3): spreads scaled in a copy of the artefact, and what that does."""
import numpy as np
import pytest

from topkima.behavioral import TopkimaHardware
from topkima.calibration import load_calibration
from topkima.studies.circuit_whatif import VARIANTS, ZERO_SCALE, variant_calibration, variant_knobs, variant_macro


def test_variants_scale_a_copy_of_the_artefact():
    cal = load_calibration()
    before = cal.comparator["offset_sigma_v"], cal.column["mismatch"]["sigma_vth_per_device_v"]
    v = variant_calibration(cal, read_sigma_scale=0.5, comparator_offset_scale=0.0, av_sigma_scale=2.0)
    assert (cal.comparator["offset_sigma_v"], cal.column["mismatch"]["sigma_vth_per_device_v"]) == before
    assert v.column["mismatch"]["sigma_vth_per_device_v"] == pytest.approx(0.5 * before[1])
    assert v.comparator["offset_sigma_v"] == pytest.approx(ZERO_SCALE * before[0])
    assert v.comparator["noise_sigma_v"] == cal.comparator["noise_sigma_v"]
    assert v.column["mismatch"]["i_on_sigma_rel"] == pytest.approx([2 * x for x in cal.column["mismatch"]["i_on_sigma_rel"]])
    for old, new in zip(cal.comparator["devices"], v.comparator["devices"]):
        assert new["sigma_vth_v"] == pytest.approx(ZERO_SCALE * old["sigma_vth_v"])
    with pytest.raises(ValueError, match="read_sigma_scale"):
        variant_calibration(cal, read_sigma_scale=-1.0)
    with pytest.raises(ValueError, match="unknown chip variant 'bigger'"):
        variant_knobs("bigger")
    assert variant_knobs("as-characterised") == dict.fromkeys(variant_knobs("nominal"), 1.0)
    assert set(VARIANTS) >= {"offset-calibrated", "nominal"}


def test_a_chip_without_spreads_selects_the_same_keys_whatever_its_seed():
    rng = np.random.default_rng(3)
    q = rng.integers(-31, 32, size=(64, 64))
    k = rng.integers(-7, 8, size=(64, 200))

    def selections(macro, seed):
        chip = TopkimaHardware(macro, chip_seed=seed).chip(macro.adc_range)
        return chip.topk(q, k, k=5, rng=np.random.default_rng(0)).indices

    nominal = variant_macro(**variant_knobs("nominal"))
    assert np.array_equal(selections(nominal, 0), selections(nominal, 1))
    characterised = variant_macro(**variant_knobs("as-characterised"))
    assert not np.array_equal(selections(characterised, 0), selections(characterised, 1))


def test_ramp_variants_lengthen_a_copy_and_say_so():
    from topkima.behavioral.macro.ramp_limits import RampLimits
    from topkima.studies.attention_eval import AttentionEvalConfig, run_evaluation
    from topkima.studies.circuit_whatif import variant_ramp_limits
    cal = load_calibration()
    knobs = variant_knobs("ramp128-offset-calibrated")
    assert knobs["n_ramp_steps"] == 128 and knobs["comparator_offset_scale"] == 0.0
    assert "n_ramp_steps" not in variant_knobs("offset-calibrated")     # older variants' identities unchanged
    v = variant_calibration(cal, n_ramp_steps=64)
    assert cal.column["timing"]["n_ramp_steps"] == 32 and "what_if" not in cal.provenance
    assert v.column["geometry"]["n_ramp_rows"] == v.column["geometry"]["n_cal_rows"] == 64
    assert v.column["geometry"]["n_rows"] == cal.column["geometry"]["n_rows"] + 64
    assert v.column["timing"]["n_ramp_steps_characterised"] == 32 and "what-if" in v.provenance["what_if"]
    assert variant_ramp_limits(knobs) == RampLimits(128, 128, 6, 4)
    assert variant_ramp_limits(None) == RampLimits()
    with pytest.raises(ValueError, match=r"n_ramp_steps must be one of \(32, 64, 128, 256\)"):
        variant_calibration(cal, n_ramp_steps=48)
    with pytest.raises(ValueError, match="a chip variant needs frozen ranges"):
        run_evaluation("unused", AttentionEvalConfig(ranges="per-call"), macro_variant=knobs)


def test_ramp_cost_grows_with_the_steps():
    from topkima.studies.ramp_cost import longer_ramp_cost
    short, long = longer_ramp_cost(32, 0.5), longer_ramp_cost(64, 0.5)
    assert long["t_ima_s"] == pytest.approx(2 * short["t_ima_s"]) == pytest.approx(256e-9)
    # α·N ramp steps, each the characterised step's energy: twice the steps, twice that energy
    assert long["e_ramp_and_comparators_j"] == pytest.approx(2 * short["e_ramp_and_comparators_j"])
    assert longer_ramp_cost(32, 0.5, auto_zero=True)["t_row_s"] == pytest.approx(short["t_row_s"] + 4e-9)
    with pytest.raises(ValueError, match="alpha must lie in"):
        longer_ramp_cost(32, 0.0)


def test_a_variant_of_another_artefact_scales_that_artefact():
    from topkima.calibration.artefact import default_artefact_path
    from topkima.studies.circuit_whatif import variant_ramp_limits
    sky130 = str(default_artefact_path().with_name("sky130_calibration.json"))
    own = load_calibration(sky130)
    macro = variant_macro(**variant_knobs("offset-calibrated"), artefact=sky130)
    assert macro.calibration.comparator["offset_sigma_v"] == pytest.approx(ZERO_SCALE * own.comparator["offset_sigma_v"])
    assert macro.calibration.comparator["noise_sigma_v"] == own.comparator["noise_sigma_v"]
    assert own.comparator["noise_sigma_v"] != load_calibration().comparator["noise_sigma_v"]    # not the committed one
    longer = variant_ramp_limits(variant_knobs("ramp64"), artefact=sky130)
    assert longer.n_steps == 64 and variant_ramp_limits(None, artefact=sky130).n_steps == 32


def test_ramp256_doubles_a_128_step_design_over_the_same_swing():
    """Issue 14 item 6: on the wideport design (128 steps, calibrated in SPICE) a ramp what-if doubles
    the ramp rows, keeps the calibration rows and halves the window's ramp pulse, and its chips convert."""
    from topkima.behavioral.macro.adc import adc_range_spanning
    from topkima.behavioral.macro.ramp_limits import RampLimits
    from topkima.calibration.artefact import default_artefact_path
    from topkima.studies.circuit_whatif import variant_ramp_limits
    wideport = str(default_artefact_path().with_name("ramp128_wideport_quick_calibration.json"))
    own = load_calibration(wideport)
    v = variant_calibration(own, n_ramp_steps=256, comparator_trim=True)
    geo, timing = v.column["geometry"], v.column["timing"]
    assert (geo["n_ramp_rows"], geo["n_cal_rows"], geo["n_rows"]) == (256, 96, own.column["geometry"]["n_rows"] + 128)
    assert timing["n_ramp_steps_characterised"] == 128 and own.column["timing"]["n_ramp_steps"] == 128
    assert "bitline capacitance is not modelled" in v.provenance["what_if"]
    limits = {name: variant_ramp_limits(variant_knobs(name), wideport)
              for name in ("ramp256", "ramp256-offset-trimmed", "ramp256-no-mismatch", "ramp256-nominal")}
    assert set(limits.values()) == {RampLimits(256, 96, 6, 2)}
    # the same swing: the widest window spans what the 128-step design's 4-unit ramp spans
    assert limits["ramp256"].max_span_units == variant_ramp_limits(None, wideport).max_span_units == 512
    # a window the 128-step chip spans at 4 units per step takes 2 here; a narrow one 1
    assert adc_range_spanning(500, 0, limits=limits["ramp256"])[0].t_ramp_units == 2
    assert adc_range_spanning(500, 300, limits=limits["ramp256"])[0].t_ramp_units == 1
    with pytest.raises(ValueError, match="already has 128 steps"):
        variant_calibration(own, n_ramp_steps=64)
    with pytest.raises(ValueError, match="beyond the measured curve"):
        variant_calibration(load_calibration(), n_ramp_steps=256)
    # its chips convert: without mismatch or noise, the 256-step chip keeps the keys an exact top-5 keeps
    # (up to near-ties: the curve's compression and leakage differ between the bitlines' levels)
    macro = variant_macro(**variant_knobs("ramp256-nominal"), artefact=wideport)
    window = adc_range_spanning(200, -60, limits=limits["ramp256"])[0]
    assert window.t_ramp_units == 2
    rng = np.random.default_rng(5)
    q = rng.integers(-3, 4, size=(32, 64))
    k = rng.integers(-7, 8, size=(64, 96))
    res = TopkimaHardware(macro, chip_seed=0).chip(window).topk(q, k, k=5, rng=np.random.default_rng(0))
    assert res.n_ramp_steps == 256 and res.indices.shape == (32, 5)
    scores = q @ k
    kth_best = np.sort(scores, axis=1)[:, -5]
    kept = np.take_along_axis(scores, res.indices, axis=1)
    assert np.mean(kept >= kth_best[:, None]) >= 0.9
