"""What every scorer takes and returns, and how one latent's judgments become its score.

Examples carry their storage identity (`set_name`, `idx`, the row key of the sampled
example sets) through scoring, so each judgment can be stored next to the example it
judged. Metrics are per latent with a bootstrap interval, never pooled over latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from autointerp_dagster.core.reporting.metrics import (
    BinaryMetrics,
    binary_metrics,
    bootstrap_ci,
    roc_auc_rows,
)
from autointerp_dagster.core.sampling import Example

DETECTION = "detection"
FUZZING = "fuzzing"
EMBEDDING = "embedding"
SURPRISAL = "surprisal"
INTERVENTION = "intervention"
# A latent whose judgments failed more often than this is a failure for that scorer, not a score from the rest.
MAX_FAILED_SHARE = 0.5
OK, FAILED, ONE_CLASS = "ok", "failed", "one_class"


@dataclass(frozen=True)
class ScoringExample:
    """An example with its identity in the example sets (e.g. set "test", idx 7)."""

    example: Example
    set_name: str
    idx: int


@dataclass(frozen=True)
class ScoreItem:
    """One latent to score. Detection and embedding: `activating` are labelled 1, `negatives` (random and hard)
    0. Fuzzing judges the `activating` windows only, each once correctly marked (1) and once mis-marked (0)."""

    latent: int
    explanation: str
    activating: Sequence[ScoringExample]
    negatives: Sequence[ScoringExample]

    def labelled(self) -> list[tuple[ScoringExample, int]]:
        return [(e, 1) for e in self.activating] + [(e, 0) for e in self.negatives]


@dataclass(frozen=True)
class Judgment:
    """One example's verdict. `prediction` None: it could not be judged (`error` says why).

    `probability` is the judge's P(yes) or P(1) from logprobs (per-example or batched), or the cosine
    similarity (embedding scorer); None when the judge only gave a hard answer.
    """

    example_set: str
    example_idx: int
    label: int
    prediction: int | None
    probability: float | None = None
    error: str | None = None


@dataclass
class LatentScore:
    """One latent's result for one scorer.

    `status`: ok; failed (`metrics` None: no example, or more than MAX_FAILED_SHARE of them, could be
    judged; `error` says which); one_class (only one class was judged, so balanced accuracy and AUC,
    which compare the classes, are None rather than a recall dressed as balance).
    `ci_low`/`ci_high`: 95% bootstrap interval of balanced accuracy; `auc_ci_low`/`auc_ci_high` the
    same for AUC when scores exist.
    """

    latent: int
    scorer: str
    metrics: BinaryMetrics | None
    ci_low: float | None
    ci_high: float | None
    n_examples: int
    n_failed: int
    judgments: list[Judgment]
    call_ids: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None
    correlation: float | None = None  # simulation: Pearson r of simulated and true activations, with its interval
    correlation_ci_low: float | None = None
    correlation_ci_high: float | None = None
    status: str = OK
    error: str | None = None
    # Scorers whose number is an effect size, not a classification (intervention: mean over prompts of
    # log P(explanation | steered) - log P(explanation | clean), nats), with its 95% bootstrap interval.
    log_prob_gain: float | None = None
    log_prob_gain_ci_low: float | None = None
    log_prob_gain_ci_high: float | None = None
    log_prob_gain_per_token: float | None = None  # the gain over the explanation's scoring-LM tokens


def summarise(
    latent: int,
    scorer: str,
    judgments: list[Judgment],
    call_ids: list[str] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    seed: int = 0,
) -> LatentScore:
    """Metrics and intervals over the judged examples; failed ones are counted, not guessed.

    AUC needs a score for every judged example; when some were judged by a hard answer
    only (no logprobs), AUC is left out rather than mixing scores with 0/1 verdicts.
    """
    judged = [j for j in judgments if j.prediction is not None]
    score = LatentScore(
        latent=latent,
        scorer=scorer,
        metrics=None,
        ci_low=None,
        ci_high=None,
        n_examples=len(judgments),
        n_failed=len(judgments) - len(judged),
        judgments=judgments,
        call_ids=list(call_ids or ()),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    if not judged or score.n_failed > MAX_FAILED_SHARE * len(judgments):
        score.status = FAILED
        score.error = f"{score.n_failed} of {len(judgments)} examples could not be judged"
        return score
    labels = np.array([j.label for j in judged])
    predictions = np.array([j.prediction for j in judged])
    scores = None
    if all(j.probability is not None for j in judged):
        scores = np.array([j.probability for j in judged], dtype=float)
    score.metrics = binary_metrics(labels, predictions, scores)
    if labels.min() == labels.max():
        score.status = ONE_CLASS
        score.metrics = replace(score.metrics, balanced_accuracy=None, auc=None)
    else:
        score.ci_low, score.ci_high = bootstrap_ci(labels, predictions, seed=seed)
        if scores is not None:
            score.auc_ci_low, score.auc_ci_high = bootstrap_ci(
                labels, scores, statistic=roc_auc_rows, seed=seed
            )
    return score


def top_share(scores: np.ndarray, k: int) -> np.ndarray:
    """Binary predictions from scores: 1 for scores at or above the k-th highest (none when k is 0), k being the
    number of positives, so no threshold is tuned on the labels beyond that count; ties can make more than k."""
    if k == 0:
        return np.zeros(len(scores), dtype=int)
    threshold = np.sort(scores)[::-1][k - 1]
    return (scores >= threshold).astype(int)
