"""A logistic-regression probe on sentence embeddings and the paired statistics it is scored with.

The task metric of the sentiment probe (see ``/work/shared/DATA.md``; the data:
:mod:`topkima.studies.movie_reviews`): a logistic-regression probe trained on sentence
embeddings of the exact model; the test split re-embedded through a modified attention and
compared with paired statistics (flip rate, McNemar's test) beside raw accuracy.

Sources
-------
- Q. McNemar, "Note on the sampling error of the difference between correlated proportions
  or percentages", Psychometrika 12(2), 1947.
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import binomtest


class LogisticProbe:
    """L2-regularised binary logistic regression fitted with L-BFGS (numpy/scipy only).

    Features are standardised with the training mean and standard deviation (a constant
    feature keeps scale 1), then ``(w, b)`` minimise

    ``J(w, b) = mean_i log(1 + exp(-s_i (x_i·w + b))) + l2 / (2 n) · ||w||²``,

    with ``s_i = ±1`` the label and ``n`` the number of training rows; the bias is not
    penalised. This is scikit-learn's ``LogisticRegression(C=1/l2)`` objective (divided by
    ``n``) on standardised features. Standardising matters for L2-normalised sentence
    embeddings: their coordinates have spread ≈ 1/√384 ≈ 0.05, so a penalty on raw
    weights would be far too strong, while on standardised features ``l2 = 1`` is a mild
    prior for ~7,000 rows × 384 dimensions. The fit starts from zero and is deterministic.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: float, l2: float):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)   #: weights on standardised features
        self.intercept = float(intercept)
        self.l2 = float(l2)
        if not (self.mean.ndim == 1 and self.mean.shape == self.scale.shape == self.coef.shape):
            raise ValueError("mean, scale and coef must be 1-D of equal length")

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> "LogisticProbe":
        """Fit on features ``X`` (n × d) and labels ``y`` in {0, 1} (both classes present).

        Parameters
        ----------
        X : array, shape (n, d)
        y : array of 0/1, shape (n,)
        l2 : float
            Penalty strength (≥ 0), scikit-learn's ``1/C``; see the class docstring.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.shape != (X.shape[0],) or not np.all(np.isfinite(X)):
            raise ValueError("X must be a finite (n, d) array and y a length-n vector")
        if not np.all((y == 0) | (y == 1)) or np.unique(y).size != 2:
            raise ValueError("y must hold 0/1 labels with both classes present")
        if not l2 >= 0:
            raise ValueError(f"l2 must be non-negative, got {l2}")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        Xs = (X - mean) / scale
        signs = 2.0 * y - 1.0
        n, d = Xs.shape

        def objective(params):
            w, b = params[:d], params[d]
            margins = signs * (Xs @ w + b)
            loss = np.logaddexp(0.0, -margins).mean() + l2 / (2 * n) * (w @ w)
            dmargin = -signs * expit(-margins) / n
            grad = np.append(Xs.T @ dmargin + (l2 / n) * w, dmargin.sum())
            return loss, grad

        result = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                          options={"maxiter": 10_000, "ftol": 1e-14, "gtol": 1e-9})
        if not result.success and np.max(np.abs(result.jac)) > 1e-6:
            warnings.warn(f"LogisticProbe.fit did not converge: {result.message}",
                          RuntimeWarning, stacklevel=2)
        return cls(mean, scale, result.x[:d], result.x[d], l2)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the positive class for each row of ``X``."""
        X = np.asarray(X, dtype=np.float64)
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (int64 0/1): 1 where the log-odds are positive."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def to_json(self) -> str:
        """The fitted probe as JSON text (floats round-trip exactly)."""
        return json.dumps({"format": "topkima.studies.probe.LogisticProbe", "version": 1,
                           "l2": self.l2, "intercept": self.intercept,
                           "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                           "coef": self.coef.tolist()})

    @classmethod
    def from_json(cls, text: str) -> "LogisticProbe":
        """Rebuild a probe from :meth:`to_json` output."""
        data = json.loads(text)
        if data.get("format") != "topkima.studies.probe.LogisticProbe" or data.get("version") != 1:
            raise ValueError("not a version-1 topkima.studies.probe.LogisticProbe JSON document")
        return cls(data["mean"], data["scale"], data["coef"], data["intercept"], data["l2"])


def _paired_vectors(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError("expected two non-empty 1-D arrays of equal length")
    return a, b


def accuracy(pred, y) -> float:
    """Fraction of items with ``pred == y``."""
    pred, y = _paired_vectors(pred, y)
    return float(np.mean(pred == y))


def binomial_se(acc: float, n: int) -> float:
    """Binomial standard error ``sqrt(acc (1 - acc) / n)`` of an accuracy over ``n`` items."""
    if n <= 0 or not 0.0 <= acc <= 1.0:
        raise ValueError(f"need 0 <= acc <= 1 and n > 0, got acc={acc}, n={n}")
    return math.sqrt(acc * (1.0 - acc) / n)


def flip_rate(pred_a, pred_b) -> float:
    """Fraction of items whose prediction differs between two systems on the same items."""
    pred_a, pred_b = _paired_vectors(pred_a, pred_b)
    return float(np.mean(pred_a != pred_b))


def mcnemar_p(correct_a, correct_b) -> float:
    """Exact two-sided McNemar test (McNemar 1947) of two systems scored on the same items.

    With ``b`` items right only under A and ``c`` right only under B, the p-value is the
    two-sided binomial test of ``b`` successes in ``b + c`` trials at probability 1/2
    (``scipy.stats.binomtest``); agreements carry no information. It is 1.0 when there are
    no discordant items.

    Parameters
    ----------
    correct_a, correct_b : array of bool, shape (n,)
        Whether each item was classified correctly by system A and by system B.
    """
    correct_a, correct_b = _paired_vectors(correct_a, correct_b)
    correct_a, correct_b = correct_a.astype(bool), correct_b.astype(bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)
