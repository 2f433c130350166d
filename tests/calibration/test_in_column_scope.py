"""`topkima calibrate-in-column` (and `calibrate-droop`) read the design an artefact records and refuse designs their
testbenches are not written for (another technology, other clocks or replica rows), before any SPICE."""
import pytest

from topkima.calibration import load_calibration
from topkima.calibration.artefact import ArtefactError, default_artefact_path
from topkima.calibration.in_column import add_in_column_threshold, settings_of_artefact


def test_the_committed_artefacts_design_is_the_one_it_records():
    cal = load_calibration()
    assert settings_of_artefact(cal).design.sha256() == cal.provenance["design_sha256"]


@pytest.mark.parametrize("name, differs", [("sky130_calibration.json", "technology"),
                                           ("ramp128_cells4x_quick_calibration.json", "replica rows")])
def test_other_designs_are_refused_naming_what_differs(tmp_path, name, differs):
    with pytest.raises(ArtefactError, match=rf"65 nm technology, clocks and 32 \+ 32 replica rows only.*{differs}"):
        add_in_column_threshold(default_artefact_path().with_name(name), tmp_path / "out.json", workers=0,
                                cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out.json").exists()


def test_a_design_with_other_key_elements_is_refused(tmp_path):
    # an artefact whose recorded design has 16 key elements (a what-if made by a documented function)
    import json
    from topkima.studies.circuit_whatif import variant_array
    path = tmp_path / "narrow.json"
    path.write_text(json.dumps(variant_array(n_columns=64, n_elements=16).data))
    with pytest.raises(ArtefactError, match=r"with 64 key elements; this design .* differs in key elements:"):
        add_in_column_threshold(path, tmp_path / "out.json", workers=0, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out.json").exists()


def test_calibrate_droop_refuses_another_technology(tmp_path):
    from topkima.calibration.bitline_droop import add_bitline_droop
    with pytest.raises(ArtefactError, match=r"calibrate-droop measures designs with the 65 nm technology and clocks only"):
        add_bitline_droop(default_artefact_path().with_name("sky130_calibration.json"), tmp_path / "out.json",
                          workers=0, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out.json").exists()
