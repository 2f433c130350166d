"""`topkima summary`: an artefact's figures, and two artefacts side by side."""
from topkima.calibration import load_calibration
from topkima.calibration.artefact import default_artefact_path
from topkima.calibration.summary import format_side_by_side, format_summary


def test_two_artefacts_side_by_side_show_both_values_of_a_differing_figure():
    tt = load_calibration()
    ss = load_calibration(default_artefact_path().with_name("ss_calibration.json"))
    text = format_side_by_side(tt.data, ss.data, "tt.json", "ss.json")
    assert text.startswith("A = tt.json\nB = ss.json")
    lsb = [line for line in text.splitlines() if line.strip().startswith("LSB")]
    assert len(lsb) == 1                                  # one line, both values
    a_lsb, b_lsb = tt.ramp["lsb_v"] * 1e3, ss.ramp["lsb_v"] * 1e3
    assert f"{a_lsb:.3g} mV" in lsb[0] and f"{b_lsb * 1e3:.3g} µV" in lsb[0]
    # a line both share is printed once, as in either summary
    shared = "  reference (Yu et al. 2022)      INL +0.27/-0.116, DNL +0.314/-0.256 LSB"
    assert text.count(shared) == 1 and shared in format_summary(tt.data)
    # the header lines differ (corner, date): both are shown, tagged
    assert any(line.startswith("A: Topkima calibration") and "corner tt" in line for line in text.splitlines())
    assert any(line.startswith("B: Topkima calibration") and "corner ss" in line for line in text.splitlines())


def test_an_artefact_without_a_design_block_is_the_65nm_preset():
    from topkima.circuits.design import reference_design
    cal = load_calibration()
    if "design" in cal.provenance:                     # regenerated with its design: it must be the preset
        assert cal.provenance["design_sha256"] == reference_design().sha256()
    data = dict(cal.data, provenance={k: v for k, v in cal.provenance.items() if not k.startswith("design")})
    from topkima.calibration import Calibration
    old = Calibration(data)
    assert old.design == reference_design().to_dict() and old.design_sha256 == reference_design().sha256()
    assert "predates design files" in format_summary(data)
