"""Do the summaries' 95% intervals over latents cover the true mean 95% of the time? Simulated per-latent scores
that look like ours (bounded, skewed: AUCs crowding 1, recalls near 0, own - shuffled differences), at the sizes
summaries have: the 8-latent demo and a 64-latent bench."""

import numpy as np
import pytest
from scipy import stats

from autointerp_dagster.core.reporting.metrics import mean_ci

SCORES = {  # name -> (draw n scores, their true mean)
    "auc near 1 (beta 5, 1.5)": (lambda rng, n: rng.beta(5, 1.5, n), 5 / 6.5),
    "rare hits (beta 0.6, 2.5)": (lambda rng, n: rng.beta(0.6, 2.5, n), 0.6 / 3.1),
    "very skewed (beta 0.3, 3)": (lambda rng, n: rng.beta(0.3, 3, n), 0.3 / 3.3),
    "own - shuffled": (lambda rng, n: rng.beta(4, 2, n) - rng.beta(2.5, 2.5, n), 4 / 6 - 0.5),
}
TRIALS = 1000


def coverage(interval, draw, truth, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for trial in range(TRIALS):
        low, high = interval(draw(rng, n), trial)
        hits += low <= truth <= high
    return hits / TRIALS


def ours(values, trial):
    return mean_ci(values, seed=trial)[1:]


def percentile_bootstrap(values, trial):
    ci = stats.bootstrap((values,), np.mean, n_resamples=999, method="percentile",
                         rng=np.random.default_rng(trial)).confidence_interval
    return ci.low, ci.high


@pytest.mark.parametrize("n", [8, 64])
@pytest.mark.parametrize("name", list(SCORES))
def test_coverage_of_mean_intervals_is_at_least_93_percent(name, n):
    draw, truth = SCORES[name]
    assert coverage(ours, draw, truth, n, seed=n) >= 0.93


def test_coverage_check_fails_the_percentile_bootstrap_at_8_latents():
    """The check can fail: the interval the summaries used before under-covers skewed scores at n = 8."""
    draw, truth = SCORES["auc near 1 (beta 5, 1.5)"]
    assert coverage(percentile_bootstrap, draw, truth, 8, seed=8) < 0.90


def test_mean_ci_edges():
    assert mean_ci([]) == (None, None, None)
    assert mean_ci([0.7]) == (0.7, None, None)
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    tied = [0.9] * 7 + [0.1]  # a few distinct values: no side narrower than the t interval's
    mean, low, high = mean_ci(tied)
    half = stats.t.ppf(0.975, 7) * np.std(tied, ddof=1) / np.sqrt(8)
    assert mean == pytest.approx(0.8) and low <= mean - half + 1e-12 and high >= mean + half - 1e-12
    assert mean_ci(np.linspace(0, 1, 20), seed=3) == mean_ci(np.linspace(0, 1, 20), seed=3)
    wide = mean_ci([0.1, 0.98], bounds=(0.0, 1.0))  # two AUCs: a t interval far past [0, 1], reported within it
    assert wide[1:] == (0.0, 1.0)
