"""Per-latent scoring metrics with confidence intervals.

Every metric here is computed for one latent's examples at a time, so results can be
reported per latent with an uncertainty instead of pooled over latents.

Division by zero follows scikit-learn's ``zero_division=0``: precision with no
predicted positives, recall with no true positives and F1 when both are zero are 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix, roc_auc_score

Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _labels(y: Sequence | np.ndarray, name: str) -> np.ndarray:
    """0/1 (or bool) labels as a bool array; anything else is a caller bug."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0/1 or booleans")
    return arr.astype(bool)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


@dataclass(frozen=True)
class BinaryMetrics:
    """Confusion counts and the metrics derived from them for one latent.

    `auc` is None when no scores were given or only one class is present.
    `balanced_accuracy` is the mean recall over the classes present in `y_true`
    (scikit-learn's definition), so with one class it equals that class's recall.
    """

    n: int
    n_positive: int
    n_negative: int
    true_positive: int
    false_positive: int
    true_negative: int
    false_negative: int
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float | None


def binary_metrics(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    y_score: Sequence | np.ndarray | None = None,
) -> BinaryMetrics:
    """Metrics of 0/1 predictions against 0/1 truth; `y_score` (e.g. P(yes)) adds AUC.

    The ratios come from the counts directly: scikit-learn's scorers would warn on the
    one-class and 0/0 cases that are routine here (a latent with no judged negatives).
    """
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError("y_true and y_pred differ in length")
    if len(t) == 0:
        raise ValueError("no examples")
    tn, fp, fn, tp = (int(c) for c in confusion_matrix(t, p, labels=[False, True]).ravel())
    n_pos, n_neg = tp + fn, tn + fp
    recall = _ratio(tp, n_pos)
    class_recalls = [r for r, count in ((recall, n_pos), (_ratio(tn, n_neg), n_neg)) if count]
    return BinaryMetrics(
        n=len(t),
        n_positive=n_pos,
        n_negative=n_neg,
        true_positive=tp,
        false_positive=fp,
        true_negative=tn,
        false_negative=fn,
        accuracy=(tp + tn) / len(t),
        balanced_accuracy=sum(class_recalls) / len(class_recalls),
        precision=_ratio(tp, tp + fp),
        recall=recall,
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        auc=None if y_score is None else roc_auc(t, y_score),
    )


def roc_auc(y_true: Sequence | np.ndarray, y_score: Sequence | np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present (AUC undefined)."""
    t = _labels(y_true, "y_true")
    s = np.asarray(y_score, dtype=float)
    if s.shape != t.shape:
        raise ValueError("y_true and y_score differ in length")
    if np.isnan(s).any():
        raise ValueError("y_score contains NaN")
    if t.all() or not t.any():
        return None
    return float(roc_auc_score(t, s))


# Batched statistics for bootstrap_ci: each row of the 2-D inputs is one resample.


def balanced_accuracy_rows(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Mean of the per-class recalls in each row; rows must contain both classes."""
    pos = y_true.astype(bool)
    pred = y_pred.astype(bool)
    tpr = (pos & pred).sum(axis=1) / pos.sum(axis=1)
    tnr = (~pos & ~pred).sum(axis=1) / (~pos).sum(axis=1)
    return (tpr + tnr) / 2.0


def roc_auc_rows(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """AUC of each row (Mann-Whitney U, ties count one half).

    Every row must hold the same, non-zero, number of each class, as the stratified
    resamples of `bootstrap_ci` do; anything else means the caller mixed up its rows.
    """
    pos = y_true.astype(bool)
    n_pos = int(pos[0].sum())
    n_neg = y_true.shape[1] - n_pos
    if n_pos == 0 or n_neg == 0 or not (pos.sum(axis=1) == n_pos).all():
        raise ValueError("every row needs the same, non-zero, number of each class")
    rank_sum = np.where(pos, stats.rankdata(y_score, axis=1), 0.0).sum(axis=1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def bootstrap_ci(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    statistic: Statistic = balanced_accuracy_rows,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of `statistic` for one latent.

    Examples are resampled with replacement within each class, so every resample keeps
    the observed class counts and class-conditional statistics stay defined. `y_pred`
    is whatever `statistic` consumes: 0/1 predictions, or scores for `roc_auc_rows`.
    `statistic` takes (n_boot, n) arrays and returns one value per row. Both classes
    must be present. Not `scipy.stats.bootstrap`: it refuses a sample of one example,
    and a latent with a single judged positive is common.
    """
    t = _labels(y_true, "y_true")
    p = np.asarray(y_pred)
    if p.shape != t.shape:
        raise ValueError("y_true and y_pred differ in length")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    pos_idx = np.flatnonzero(t)
    neg_idx = np.flatnonzero(~t)
    if len(pos_idx) == 0 or len(neg_idx) == 0:
        raise ValueError("bootstrap_ci needs both classes")
    rng = np.random.default_rng(seed)
    idx = np.concatenate(
        [
            pos_idx[rng.integers(0, len(pos_idx), size=(n_boot, len(pos_idx)))],
            neg_idx[rng.integers(0, len(neg_idx), size=(n_boot, len(neg_idx)))],
        ],
        axis=1,
    )
    stats_b = np.asarray(statistic(t[idx], p[idx]), dtype=float)
    low, high = np.quantile(stats_b, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


Interval = tuple[float | None, float | None, float | None]  # (mean, low, high), as mean_ci gives it
MEAN_INTERVAL = "bootstrap-t"  # how mean_ci's intervals are made, named wherever they are shown


UNIT_METRICS = ("auc", "balanced_accuracy", "accuracy", "precision", "recall", "f1")  # each in [0, 1]


def metric_bounds(metric: str, difference: bool = False) -> tuple[float, float] | None:
    """Where a mean of `metric` (or of a difference of two) can lie, for clipping its interval."""
    if metric not in UNIT_METRICS:
        return None
    return (-1.0, 1.0) if difference else (0.0, 1.0)


def mean_ci(values: Sequence | np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0,
            bounds: tuple[float, float] | None = None) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): an average over latents with a studentized (bootstrap-t) interval over latents.

    Latents are the unit that varies between coders, so they are what is resampled. Per-latent scores are
    bounded and skewed (AUCs near 1, differences near 0) and a summary often has a few dozen latents: there the
    percentile bootstrap and BCa cover about 86-92% for a nominal 95%, a t interval 84-94%, and bootstrap-t
    93-96% (tests/test_interval_coverage.py checks it at n = 8 and 64). Resamples without spread cannot be
    studentized and are left out; where ties leave the bootstrap-t interval narrower than the t interval on a
    side (a few distinct values), that side is the t interval's. None with fewer than two latents; the point
    itself when every latent has the same value. `bounds`: where the mean can lie (an AUC's [0, 1]); an interval
    is never reported past them.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None, None, None
    mean = float(values.mean())
    if values.size < 2:
        return mean, None, None
    n = values.size
    standard_error = values.std(ddof=1) / np.sqrt(n)
    if standard_error == 0:
        return mean, mean, mean
    t_half = stats.t.ppf(1 - alpha / 2, n - 1) * standard_error
    rng = np.random.default_rng(seed)
    pivots = []
    chunk = max(1, 4_000_000 // n)  # resamples at a time: memory stays bounded for 131k latents
    for start in range(0, n_boot, chunk):
        sample = values[rng.integers(0, n, size=(min(chunk, n_boot - start), n))]
        errors = sample.std(axis=1, ddof=1) / np.sqrt(n)
        ok = errors > 0
        pivots.append((sample.mean(axis=1)[ok] - mean) / errors[ok])
    pivots = np.concatenate(pivots)
    low, high = mean - t_half, mean + t_half
    if pivots.size:
        low_q, high_q = np.quantile(pivots, [alpha / 2, 1 - alpha / 2])
        low, high = min(low, mean - high_q * standard_error), max(high, mean - low_q * standard_error)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, float(low), float(high)


def format_interval(value: Interval) -> str:
    """"mean [low, high]", the mean alone without an interval, "n/a" without a mean."""
    mean, low, high = value
    if mean is None:
        return "n/a"
    if low is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"
