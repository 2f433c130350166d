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
                       (dict(key_policy="row"), "key_policy"), (dict(chips=0), "chips")):
        with pytest.raises(ValueError, match=match):
            LmEvalConfig(**bad).validated()


@pytest.mark.weights
def test_lm_eval_runs_resumes_and_orders_the_modes(tmp_path):
    config = LmEvalConfig(windows=1, ks=(5,), modes=("exact", "float-topk", "topk"), chips=1)
    summary = run_lm_eval(tmp_path, config, log=lambda text: None)
    by_mode = {r["mode"]: r for r in summary["results"]}
    # real text, causal model: top-5 without quantisation loses to exact, the quantised top-5 loses more
    assert 5 < by_mode["exact"]["perplexity"] < by_mode["float-topk"]["perplexity"] < by_mode["topk"]["perplexity"]
    assert all(r["predictions"] == 255 for r in summary["results"])
    assert json.loads((tmp_path / "summary.json").read_text())["results"] == summary["results"]
    assert (tmp_path / "perplexity_vs_k.png").stat().st_size > 0
    # a rerun reuses the finished runs (identical figures, none recomputed)
    runs = next((tmp_path / "runs").iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in runs.glob("*_k5.json")}
    again = run_lm_eval(tmp_path, config, log=lambda text: None)
    assert again["results"] == summary["results"]
    assert {p.name: p.stat().st_mtime_ns for p in runs.glob("*_k5.json")} == stamps
