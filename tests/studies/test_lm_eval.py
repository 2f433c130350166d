"""`topkima lm-eval` (issue 14 item 5): the float top-k baseline, the study's runs and resume."""
import json

import numpy as np
import pytest

from topkima.studies.lm_eval import LmEvalConfig, float_topk_attention, run_lm_eval


def test_float_topk_attention_matches_a_row_by_row_reference():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 9, 4)) for _ in range(3))
    mask = np.tril(np.ones((9, 9), dtype=bool))
    got = float_topk_attention(q, k, v, mask, 3)
    want = np.zeros_like(got)
    for idx in np.ndindex(2, 3, 9):
        b, h, r = idx
        s = q[b, h, r] @ k[b, h].T
        visible = np.flatnonzero(mask[r])
        best = visible[np.argsort(-s[visible], kind="stable")[:3]]
        w = np.exp(s[best] - s[best].max())
        want[idx] = (w / w.sum()) @ v[b, h, best]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_config_errors_name_the_field():
    for bad, match in ((dict(tokens=300), "tokens"), (dict(ks=(0,)), "ks"), (dict(modes=("dense",)), "modes"),
                       (dict(key_policy="row"), "key_policy"), (dict(chips=0), "chips"),
                       (dict(key_order="oldest-first"), "key_order"), (dict(readback="adc"), "readback")):
        with pytest.raises(ValueError, match=match):
            LmEvalConfig(**bad).validated()


@pytest.mark.weights
def test_lm_eval_runs_resumes_and_orders_the_modes(tmp_path):
    config = LmEvalConfig(windows=1, ks=(5,), modes=("exact", "float-topk", "topk"), chips=1)
    summary = run_lm_eval(tmp_path, config, workers=0, log=lambda text: None)
    by_mode = {r["mode"]: r for r in summary["results"]}
    # real text, causal model: top-5 without quantisation loses to exact, the quantised top-5 loses more
    assert 5 < by_mode["exact"]["perplexity"] < by_mode["float-topk"]["perplexity"] < by_mode["topk"]["perplexity"]
    assert all(r["predictions"] == 255 for r in summary["results"])
    assert json.loads((tmp_path / "summary.json").read_text())["results"] == summary["results"]
    assert (tmp_path / "perplexity_vs_k.png").stat().st_size > 0
    # a rerun reuses the finished runs (identical figures, none recomputed)
    runs = next((tmp_path / "runs").iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in runs.glob("*_k5.json")}
    again = run_lm_eval(tmp_path, config, workers=0, log=lambda text: None)
    assert again["results"] == summary["results"]
    assert {p.name: p.stat().st_mtime_ns for p in runs.glob("*_k5.json")} == stamps


def _figures(summary: dict) -> list[dict]:
    """The results without their run times (which differ between otherwise identical runs)."""
    return [{key: value for key, value in r.items() if key != "seconds"} for r in summary["results"]]


@pytest.mark.weights
def test_one_and_two_workers_and_a_dask_cluster_give_identical_figures(tmp_path):
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed (pip install '.[mc]')")
    # two windows: two shards per run, so that two workers split each run
    config = LmEvalConfig(windows=2, ks=(5,), modes=("exact", "topkima"), chips=1)
    one = run_lm_eval(tmp_path / "w1", config, workers=1, log=lambda text: None)
    two = run_lm_eval(tmp_path / "w2", config, workers=2, log=lambda text: None)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_lm_eval(tmp_path / "dask", config, scheduler=cluster.scheduler_address, log=lambda text: None)
    assert _figures(two) == _figures(one)
    assert _figures(dask) == _figures(one)
    assert "Dask" in dask["execution"]["where"] and two["execution"]["window_runs"] == 4
    chip = next(r for r in one["results"] if r["mode"] == "topkima")
    assert chip["predictions"] == 2 * 255 and 0 < chip["alpha_mean"] <= 1
    # each window's shard is its own resumable file
    assert len(list((tmp_path / "w2" / "runs").glob("*/topkima_k5_chip0_w*.json"))) == 2


def test_an_unreachable_scheduler_is_named(tmp_path, capsys):
    pytest.importorskip("distributed", reason="needs dask.distributed (pip install '.[mc]')")
    from topkima.cli import main
    import socket
    with socket.socket() as s:   # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["lm-eval", "--windows", "1", "--modes", "exact", "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--scheduler-timeout", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "cannot reach a Dask scheduler" in capsys.readouterr().err


def test_the_selection_set_shares_no_window_or_chip_with_the_evaluated_set():
    from topkima.studies.lm_eval import set_layout
    for tokens in (256, 512, 1024):
        for windows in (1, 4, 7):
            for chips in (1, 3, 10):
                ev = set_layout(LmEvalConfig(tokens=tokens, windows=windows, chips=chips).validated())
                sel = set_layout(LmEvalConfig(tokens=tokens, windows=windows, chips=chips, text_set="select").validated())
                # windows are disjoint token slices: no window index in common means no token in common
                assert not set(ev["scored"] + ev["calibration"]) & set(sel["scored"] + sel["calibration"])
                assert not set(ev["scored"]) & set(ev["calibration"])
                assert not set(sel["scored"]) & set(sel["calibration"])
                assert not set(ev["chips"]) & set(sel["chips"])
                assert len(ev["scored"]) == len(sel["scored"]) == windows
                assert len(ev["chips"]) == len(sel["chips"]) == chips
    # the default is the set reported before the selection set existed: windows 0–3, ranges on 4–7, chips 0–2
    assert set_layout(LmEvalConfig()) == {"scored": [0, 1, 2, 3], "calibration": [4, 5, 6, 7], "chips": [0, 1, 2]}
    # and the selection set is where the defaults were chosen: windows 8–15, chips 10, 11, …
    assert set_layout(LmEvalConfig(text_set="select")) == {"scored": [8, 9, 10, 11], "calibration": [12, 13, 14, 15],
                                                           "chips": [10, 11, 12]}


def test_bad_candidates_are_named():
    with pytest.raises(ValueError, match=r"candidates .* ≥ every k \(10\)"):
        LmEvalConfig(ks=(5, 10), readback="exact", candidates=7).validated()
    with pytest.raises(ValueError, match="needs readback 'exact'"):
        LmEvalConfig(candidates=7).validated()
    assert LmEvalConfig(candidates=5).validated().candidates == 5     # m = 0: any read-back
    from topkima.cli import main
    with pytest.raises(SystemExit):
        main(["lm-eval", "--candidates", "0"])


def test_bad_sets_and_too_many_chips_are_named():
    with pytest.raises(ValueError, match="text_set must be one of eval, select"):
        LmEvalConfig(text_set="test").validated()
    with pytest.raises(ValueError, match="chips must be at most 10"):
        LmEvalConfig(chips=11).validated()


def test_the_cli_refuses_an_unknown_set(capsys):
    from topkima.cli import main
    with pytest.raises(SystemExit):
        main(["lm-eval", "--set", "test"])
    assert "invalid choice: 'test'" in capsys.readouterr().err


@pytest.mark.weights
def test_a_selection_set_run_says_what_it_is(tmp_path):
    config = LmEvalConfig(windows=1, ks=(5,), modes=("exact",), chips=1, text_set="select")
    summary = run_lm_eval(tmp_path, config, workers=0, log=lambda text: None)
    assert summary["set"] == "select" and "never evidence" in summary["purpose"]
    assert summary["evaluated_windows"] == [2] and summary["calibration_windows"] == [3]
    evaluated = run_lm_eval(tmp_path / "eval", LmEvalConfig(windows=1, ks=(5,), modes=("exact",), chips=1),
                            workers=0, log=lambda text: None)
    assert evaluated["set"] == "eval" and evaluated["evaluated_windows"] == [0]
    # another text: another perplexity (window 2 scored, not window 0)
    assert summary["results"][0]["perplexity"] != evaluated["results"][0]["perplexity"]


@pytest.mark.weights
def test_the_chips_of_another_artefact_are_that_artefacts(tmp_path):
    """--artefact: topkima mode's chips (and the windows' ramp limits) come from the given artefact;
    its SHA-256 keeps its runs apart; a missing file is named before anything runs."""
    import hashlib
    from pathlib import Path
    from topkima.calibration.artefact import default_artefact_path
    sky130 = default_artefact_path().with_name("sky130_calibration.json")
    config = LmEvalConfig(windows=1, ks=(5,), modes=("topkima",), chips=1)
    own = run_lm_eval(tmp_path, config, workers=0, artefact=sky130, log=lambda text: None)
    committed = run_lm_eval(tmp_path, config, workers=0, log=lambda text: None)
    assert own["artefact"] == str(sky130.resolve()) and committed["artefact"] is None
    identities = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/identity.json")]
    assert sorted(i["artefact"] for i in identities) == sorted(
        hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (sky130, default_artefact_path()))
    assert own["results"][0]["perplexity"] != committed["results"][0]["perplexity"]
    with pytest.raises((ValueError, OSError), match="missing.json"):
        run_lm_eval(tmp_path, config, workers=0, artefact=tmp_path / "missing.json", log=lambda text: None)


@pytest.mark.weights
def test_candidates_reach_the_chip(tmp_path):
    """--candidates: the chip's k-counter waits for k_c grants (a later stop: larger α) and the
    digital top-k keeps 5 of them (fewer kept keys outside the quantised top-5); part of the runs'
    identity and of the summary."""
    base = LmEvalConfig(windows=1, ks=(5,), modes=("topkima",), chips=1, readback="exact")
    m0 = run_lm_eval(tmp_path, base, workers=0, log=lambda text: None)
    m5 = run_lm_eval(tmp_path, LmEvalConfig(**{**base.__dict__, "candidates": 10}), workers=0, log=lambda text: None)
    assert m5["config"]["candidates"] == 10 and m0["config"]["candidates"] is None
    assert len(list((tmp_path / "runs").iterdir())) == 2
    r0, r5 = m0["results"][0], m5["results"][0]
    assert r5["alpha_mean"] > r0["alpha_mean"]
    assert r5["kept_below_kth"] < r0["kept_below_kth"]
    assert r5["perplexity"] != r0["perplexity"]


@pytest.mark.weights
def test_av_options_reach_the_ranges_and_the_chip(tmp_path):
    """--av-full-scale: the stored ranges' A·V full scales are lower with a quantile, the K and V
    scales unchanged; --av-adc-bits: same ranges, another A·V read-out; both part of the identity."""
    base = LmEvalConfig(windows=1, ks=(5,), modes=("topkima",), chips=1)
    runs = {}
    for name, extra in (("max", {}), ("q99", {"av_full_scale": 0.99}), ("bits16", {"av_adc_bits": 16})):
        summary = run_lm_eval(tmp_path / name, LmEvalConfig(**{**base.__dict__, **extra}), workers=0,
                              log=lambda text: None)
        ranges = json.loads(next((tmp_path / name / "runs").glob("*/ranges.json")).read_text())["5"]
        runs[name] = (summary["results"][0]["perplexity"], ranges)
    (p_max, r_max), (p_q, r_q), (p_16, r_16) = runs["max"], runs["q99"], runs["bits16"]
    assert len({p_max, p_q, p_16}) == 3
    assert r_16 == r_max
    for layer_max, layer_q in zip(r_max, r_q):
        assert np.all(np.asarray(layer_q["av_full_scale"]) < np.asarray(layer_max["av_full_scale"]))
        assert layer_q["v_scale"] == layer_max["v_scale"] and layer_q["k_scale"] == layer_max["k_scale"]
