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
