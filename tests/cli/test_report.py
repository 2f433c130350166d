"""`topkima report`: stages, the page, failures shown and counted (fast stages only here; the
full `--quick` report is what `make demo` runs)."""
import json

import pytest

from topkima import report
from topkima.cli import main


def test_golden_stage_writes_the_page_and_the_json(tmp_path):
    assert report.build_report(tmp_path, stages=("golden",), log=lambda t: None) == 0
    page = (tmp_path / "index.html").read_text()
    assert "golden SPICE conversions" in page and "compare_golden.txt" in page
    text = (tmp_path / "golden" / "compare_golden.txt").read_text()
    assert "exact" in text and "LSB" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert [s["name"] for s in data["stages"]] == ["golden"] and data["stages"][0]["ok"]


def test_a_failing_stage_is_shown_and_the_others_still_run(tmp_path, monkeypatch):
    # a fake stage stands in for a failure (error path only); the golden stage is the real one
    def broken(out, quick, workers, log):
        raise RuntimeError("ngspice said: no such model 'nch'")
    monkeypatch.setitem(report._RUNNERS, "calibration", broken)
    assert report.build_report(tmp_path, stages=("calibration", "golden"), log=lambda t: None) == 1
    page = (tmp_path / "index.html").read_text()
    assert "This stage failed" in page and "no such model" in page
    stages = json.loads((tmp_path / "report.json").read_text())["stages"]
    assert [s["ok"] for s in stages] == [False, True]
    assert "no such model" in stages[0]["error"]


def test_unknown_stage_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown report stage"):
        report.build_report(tmp_path, stages=("golden", "sorting"))
    assert main(["report", "--stages", "golden,sorting", "--out", str(tmp_path)]) == 2
    assert "choose from calibration" in capsys.readouterr().err


def test_html_escapes_what_it_shows():
    page = report.render_html([report.StageResult("x", "<b>title</b>", text="a < b & c")], {"commit": "<x>"})
    assert "&lt;b&gt;title&lt;/b&gt;" in page and "a &lt; b &amp; c" in page and "&lt;x&gt;" in page


def test_spice_comparison_lines_survive_a_missing_or_partial_comparison():
    assert "not run" in report._spice_vs_model_lines({})
    text = report._spice_vs_model_lines({"offset_by_vcm": [], "column_codes": None,
                                         "column_codes_note": "golden windows differ"})
    assert "golden windows differ" in text
