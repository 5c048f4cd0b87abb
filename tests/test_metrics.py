"""Metrics checked against scikit-learn, and the bootstrap's coverage and determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn import metrics as skm

from autointerp_dagster.core.reporting.metrics import (
    balanced_accuracy_rows,
    binary_metrics,
    bootstrap_ci,
    roc_auc,
    roc_auc_rows,
)

KNOWN = [
    ([1, 1, 0, 0], [1, 0, 0, 1]),
    ([1, 0, 1, 0, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 1]),
    ([1, 1, 1, 0], [1, 1, 1, 1]),  # everything predicted positive
    ([1, 1, 0, 0], [0, 0, 0, 0]),  # nothing predicted positive: precision 0/0
    ([0, 0, 0, 0], [0, 1, 0, 0]),  # no true positives: recall 0/0
    ([1, 1, 1], [1, 0, 1]),  # one class only
    ([0, 0, 0], [0, 0, 0]),  # one class, all correct
]


def _random_cases(count: int = 30):
    rng = np.random.default_rng(1)
    for _ in range(count):
        n = int(rng.integers(2, 60))
        yield rng.integers(0, 2, n), rng.integers(0, 2, n)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("y_true, y_pred", KNOWN + list(_random_cases()))
def test_binary_metrics_match_sklearn(y_true, y_pred):
    m = binary_metrics(y_true, y_pred)
    zd = {"zero_division": 0}
    assert m.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m.precision == pytest.approx(skm.precision_score(y_true, y_pred, **zd))
    assert m.recall == pytest.approx(skm.recall_score(y_true, y_pred, **zd))
    assert m.f1 == pytest.approx(skm.f1_score(y_true, y_pred, **zd))
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    counts = (m.true_positive, m.false_positive, m.true_negative, m.false_negative)
    assert counts == (tp, fp, tn, fn)
    assert m.n == len(y_true)
    assert m.n_positive == int(np.sum(y_true)) and m.n_negative == m.n - m.n_positive
    assert m.auc is None


def test_binary_metrics_known_values():
    m = binary_metrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
    assert (m.true_positive, m.false_positive, m.true_negative, m.false_negative) == (2, 1, 1, 1)
    assert m.accuracy == pytest.approx(0.6)
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)


def test_binary_metrics_auc_from_scores():
    y = [1, 0, 1, 0, 1]
    scores = [0.9, 0.2, 0.4, 0.4, 0.8]
    m = binary_metrics(y, [1, 0, 0, 0, 1], y_score=scores)
    assert m.auc == pytest.approx(skm.roc_auc_score(y, scores))
    assert binary_metrics([1, 1], [1, 0], y_score=[0.3, 0.6]).auc is None


def test_binary_metrics_accepts_bools_and_rejects_bad_input():
    assert binary_metrics([True, False], [True, True]).precision == 0.5
    with pytest.raises(ValueError):
        binary_metrics([1, 2], [1, 0])
    with pytest.raises(ValueError):
        binary_metrics([1, 0], [1])
    with pytest.raises(ValueError):
        binary_metrics([], [])


AUC_CASES = [
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]),
    ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]),  # all tied: 0.5
    ([1, 1, 0, 0, 1, 0], [3, 2, 2, 1, 2, 3]),  # ties across classes
    ([0, 1], [1.0, 0.0]),  # perfectly wrong
    ([0, 0, 1], [-2.0, -1.0, 5.0]),
]


@pytest.mark.parametrize("y_true, y_score", AUC_CASES)
def test_roc_auc_matches_sklearn_known(y_true, y_score):
    assert roc_auc(y_true, y_score) == pytest.approx(skm.roc_auc_score(y_true, y_score))


def test_roc_auc_matches_sklearn_random_with_ties():
    rng = np.random.default_rng(2)
    for _ in range(50):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        s = rng.integers(0, 5, n) / 4.0  # few distinct values: many ties
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
        s = rng.normal(size=n)
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))


def test_roc_auc_none_for_one_class_and_rejects_nan():
    assert roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert roc_auc([0, 0], [0.1, 0.2]) is None
    with pytest.raises(ValueError):
        roc_auc([1, 0], [0.1, float("nan")])


def test_row_statistics_match_scalar_versions():
    rng = np.random.default_rng(3)
    y = np.tile(np.r_[np.ones(7, int), np.zeros(9, int)], (20, 1))
    pred = rng.integers(0, 2, y.shape)
    scores = rng.integers(0, 4, y.shape).astype(float)
    bal = balanced_accuracy_rows(y, pred)
    auc = roc_auc_rows(y, scores)
    for r in range(y.shape[0]):
        assert bal[r] == pytest.approx(skm.balanced_accuracy_score(y[r], pred[r]))
        assert auc[r] == pytest.approx(skm.roc_auc_score(y[r], scores[r]))


def test_roc_auc_rows_rejects_unequal_class_counts():
    y = np.array([[1, 0, 0], [1, 1, 0]])
    with pytest.raises(ValueError):
        roc_auc_rows(y, np.zeros((2, 3)))


def _noisy_predictions(n: int, accuracy: float, seed: int):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    flip = rng.random(n) > accuracy
    return y, np.where(flip, 1 - y, y)


def test_bootstrap_ci_contains_point_estimate():
    for seed in range(5):
        y, pred = _noisy_predictions(100, 0.75, seed)
        point = binary_metrics(y, pred).balanced_accuracy
        low, high = bootstrap_ci(y, pred, seed=seed)
        assert low <= point <= high
        assert low < high


def test_bootstrap_ci_narrows_with_more_data():
    small = bootstrap_ci(*_noisy_predictions(40, 0.75, 0))
    large = bootstrap_ci(*_noisy_predictions(1000, 0.75, 0))
    assert (large[1] - large[0]) < 0.5 * (small[1] - small[0])


def test_bootstrap_ci_deterministic_per_seed():
    y, pred = _noisy_predictions(60, 0.7, 4)
    assert bootstrap_ci(y, pred, seed=7) == bootstrap_ci(y, pred, seed=7)
    assert bootstrap_ci(y, pred, seed=7) != bootstrap_ci(y, pred, seed=8)


def test_bootstrap_ci_alpha_controls_width():
    y, pred = _noisy_predictions(100, 0.7, 5)
    wide = bootstrap_ci(y, pred, alpha=0.01)
    narrow = bootstrap_ci(y, pred, alpha=0.5)
    assert wide[0] <= narrow[0] and narrow[1] <= wide[1]
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_bootstrap_ci_stratified_keeps_both_classes():
    # 1 positive among 30: unstratified resamples would often lose it and make
    # balanced accuracy undefined (nan); stratified ones never do.
    y = np.r_[1, np.zeros(29, int)]
    pred = np.r_[1, np.zeros(25, int), np.ones(4, int)]
    low, high = bootstrap_ci(y, pred, n_boot=500)
    assert np.isfinite(low) and np.isfinite(high)
    assert 0.5 <= low <= high <= 1.0


def test_bootstrap_resamples_keep_class_counts_and_draw_within_class():
    y = np.r_[np.ones(3, int), np.zeros(8, int)]
    pred = np.arange(11)  # identifies which example was drawn
    seen = {}

    def record(t, p):
        seen["t"], seen["p"] = t, p
        return t.mean(axis=1)

    bootstrap_ci(y, pred, statistic=record, n_boot=200)
    t, p = seen["t"], seen["p"]
    assert t.shape == p.shape == (200, 11)
    assert (t.sum(axis=1) == 3).all()
    assert (y[p] == t).all()  # positives drawn only from positives, negatives from negatives
    assert len(np.unique(p[t == 0])) == 8  # every negative gets drawn somewhere


def test_bootstrap_ci_with_auc_and_accuracy_statistics():
    rng = np.random.default_rng(6)
    y = np.r_[np.ones(50, int), np.zeros(50, int)]
    scores = y * 0.8 + rng.normal(size=100)
    point = roc_auc(y, scores)
    low, high = bootstrap_ci(y, scores, statistic=roc_auc_rows)
    assert low <= point <= high and 0.5 < low
    pred = (scores > 0.4).astype(int)
    low, high = bootstrap_ci(y, pred, statistic=lambda t, p: (t == p).mean(axis=1))
    assert low <= binary_metrics(y, pred).accuracy <= high


def test_bootstrap_ci_rejects_single_class_and_bad_alpha():
    with pytest.raises(ValueError):
        bootstrap_ci([1, 1, 1], [1, 0, 1])
    with pytest.raises(ValueError):
        bootstrap_ci([1, 0], [1, 0], alpha=1.5)


def test_bootstrap_ci_is_fast():
    y, pred = _noisy_predictions(100, 0.7, 0)
    bootstrap_ci(y, pred)  # warm-up
    start = time.perf_counter()
    bootstrap_ci(y, pred, n_boot=1000)
    assert time.perf_counter() - start < 0.1

