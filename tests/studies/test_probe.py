"""Tests of topkima.studies.probe: the logistic probe against its documented objective and a
plain gradient descent, and the paired statistics against hand cases and scipy."""
import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from topkima.studies import probe as st


# --- probe --------------------------------------------------------------------------------

def _gaussian_blobs(n=300, d=4, seed=0):
    """Two overlapping Gaussian classes with unequal feature scales and offsets."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) * np.array([1.0, 0.1, 3.0, 0.5])[:d] + 2.0
    X[:, 0] += 1.5 * y
    X[:, 1] -= 0.1 * y
    return X, y


def _reference_objective(params, Xs, y, l2):
    """The documented objective, written out plainly: mean log-loss + l2/(2n)·||w||²."""
    w, b = params[:-1], params[-1]
    n = len(y)
    total = 0.0
    for x_i, y_i in zip(Xs, y):
        p = 1.0 / (1.0 + math.exp(-(x_i @ w + b)))
        total -= math.log(p) if y_i == 1 else math.log(1.0 - p)
    return total / n + l2 / (2 * n) * (w @ w)


def _standardise(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.mark.parametrize("l2", [0.0, 1.0, 30.0])
def test_probe_gradient_vanishes_at_the_fit(l2):
    X, y = _gaussian_blobs()
    probe = st.LogisticProbe.fit(X, y, l2=l2)
    params = np.append(probe.coef, probe.intercept)
    Xs = _standardise(X)
    step = 1e-5
    for j in range(len(params)):
        bump = np.zeros_like(params)
        bump[j] = step
        slope = (_reference_objective(params + bump, Xs, y, l2)
                 - _reference_objective(params - bump, Xs, y, l2)) / (2 * step)
        assert abs(slope) < 1e-7, (j, slope)


def test_probe_matches_plain_gradient_descent():
    X, y = _gaussian_blobs(n=200, d=3, seed=1)
    l2 = 2.0
    probe = st.LogisticProbe.fit(X, y, l2=l2)
    Xa = np.column_stack([_standardise(X), np.ones(len(y))])
    n = len(y)
    lipschitz = 0.25 * np.linalg.eigvalsh(Xa.T @ Xa / n).max() + l2 / n
    params = np.zeros(Xa.shape[1])
    penalty = np.append(np.full(X.shape[1], l2 / n), 0.0)   # the bias is not penalised
    for _ in range(20_000):
        p = 1.0 / (1.0 + np.exp(-(Xa @ params)))
        params -= (Xa.T @ (p - y) / n + penalty * params) / lipschitz
    np.testing.assert_allclose(probe.coef, params[:-1], atol=1e-6)
    assert probe.intercept == pytest.approx(params[-1], abs=1e-6)


def test_probe_predicts_well_is_deterministic_and_round_trips_json():
    X, y = _gaussian_blobs(n=600, d=4, seed=2)
    X_test, y_test = _gaussian_blobs(n=600, d=4, seed=3)
    probe = st.LogisticProbe.fit(X, y)
    assert st.accuracy(probe.predict(X_test), y_test) > 0.7
    assert set(np.unique(probe.predict(X_test))) <= {0, 1}
    text = probe.to_json()
    assert st.LogisticProbe.fit(X, y).to_json() == text
    json.loads(text)
    restored = st.LogisticProbe.from_json(text)
    assert np.array_equal(restored.decision_function(X_test), probe.decision_function(X_test))
    with pytest.raises(ValueError):
        st.LogisticProbe.from_json(json.dumps({"format": "something else", "version": 1}))


def test_probe_keeps_constant_features_finite():
    X, y = _gaussian_blobs(n=100, d=3)
    X = np.column_stack([X, np.full(len(y), 0.25)])
    probe = st.LogisticProbe.fit(X, y)
    assert probe.scale[-1] == 1.0 and probe.coef[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.isfinite(probe.decision_function(X)))


@pytest.mark.parametrize("y", [np.zeros(10, int), np.full(10, 2)])
def test_probe_rejects_bad_labels(y):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError):
        st.LogisticProbe.fit(X, y)


# --- paired statistics --------------------------------------------------------------------

def test_mcnemar_hand_case():
    correct_a = np.array([False] * 5 + [True] * 20)
    correct_b = np.array([True] * 5 + [True] * 20)       # b = 0, c = 5
    assert st.mcnemar_p(correct_a, correct_b) == pytest.approx(2 * 0.5**5, rel=1e-12)
    assert st.mcnemar_p(correct_b, correct_a) == pytest.approx(0.0625, rel=1e-12)


def test_mcnemar_without_discordant_pairs_is_one():
    same = np.array([True, False, True])
    assert st.mcnemar_p(same, same) == 1.0


def test_mcnemar_matches_binomtest_and_exact_sum():
    rng = np.random.default_rng(4)
    correct_a = rng.random(500) < 0.8
    correct_b = np.where(rng.random(500) < 0.1, ~correct_a, correct_a)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    m = only_a + only_b
    tail = sum(math.comb(m, k) for k in range(min(only_a, only_b) + 1)) / 2**m
    expected = min(1.0, 2 * tail)                       # symmetric null: twice the small tail
    p = st.mcnemar_p(correct_a, correct_b)
    assert p == pytest.approx(expected, rel=1e-9)
    assert p == pytest.approx(binomtest(only_a, m, 0.5).pvalue, rel=1e-12)


def test_accuracy_flip_rate_and_standard_error():
    y = np.array([1, 0, 1, 1])
    assert st.accuracy(np.array([1, 0, 0, 1]), y) == 0.75
    assert st.flip_rate(np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0])) == 0.5
    assert st.binomial_se(0.788, 3022) == pytest.approx(math.sqrt(0.788 * 0.212 / 3022))
    assert st.binomial_se(0.788, 3022) == pytest.approx(0.0074, abs=1e-4)   # DATA.md's ≈ 0.74 pp
    with pytest.raises(ValueError):
        st.flip_rate(np.array([1, 0]), np.array([1]))
