"""One scoring pass over a latent range: which items are judged, their shuffled-explanation controls,
and the rows they leave in the `scores` and `judgments` tables.

The control is the paper's random-explanation control: each latent's examples are also judged against
another latent's explanation from the same SAE (explainer and model), drawn with a generator seeded by
the SAE and the latent, so a re-run draws the same one. A score means something only beside what a
shuffled explanation scores on the same examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autointerp_dagster.core.config import ScorerConfig, SimulationConfig
from autointerp_dagster.core.sampling import ExampleSets, evenly_spaced, stable_key_hash
from autointerp_dagster.core.scorers.common import (
    LatentScore,
    ScoreItem,
    ScoringExample,
)
from autointerp_dagster.core.store.tables import SCORE_METRICS

from ..keys import stable_id

OWN, SHUFFLED = "none", "shuffled"
COUNTS = ("true_positive", "false_positive", "true_negative", "false_negative")


@dataclass(frozen=True)
class ScoringTask:
    """An item to score and what it is: the latent's own explanation, or a control borrowed from `control_latent`."""

    item: ScoreItem
    explanation_id: str
    control: str = OWN
    control_latent: int | None = None


def scorer_config_id(config: ScorerConfig | SimulationConfig, judged_per_class: int | None, negatives: str,
                     name: str | None = None) -> str:
    """A stable name for everything that changes how examples are judged, so results of other settings coexist;
    `name` (default: the judge's mode) prefixes the hash."""
    chosen = {**config.identity(), "judged_per_class": judged_per_class, "negatives": negatives}
    return f"{name or config.mode}-{stable_id(chosen, 8)}"


def scoring_tasks(sae: str, explained: Mapping[int, Mapping], sets: Mapping[int, ExampleSets],
                  explanation_pool: Mapping[int, str], negatives: str, seed: int) -> list[ScoringTask]:
    """For every explained latent with examples: its own explanation and, when the SAE has another explained
    latent, a shuffled one. `explanation_pool`: every explained latent of the SAE -> its explanation."""
    tasks = []
    for latent, row in sorted(explained.items()):
        latent_sets = sets.get(latent)
        if latent_sets is None:
            continue
        activating = [ScoringExample(e, "test", i) for i, e in enumerate(latent_sets.test)]
        negative = [ScoringExample(e, "random", i) for i, e in enumerate(latent_sets.random_negatives)]
        sources = negatives.split("+")
        if "hard" in sources:
            negative += [ScoringExample(e, "hard_negative", i) for i, e in enumerate(latent_sets.hard_negative_test)]
        if "neighbour" in sources:
            negative += [ScoringExample(e, "neighbour", i) for i, e in enumerate(latent_sets.neighbour_test)]
        tasks.append(ScoringTask(ScoreItem(latent, row["explanation"], activating, negative), row["explanation_id"]))
        others = sorted(other for other in explanation_pool if other != latent)
        if others:
            rng = np.random.default_rng([seed, stable_key_hash(sae), latent])
            borrowed = others[int(rng.integers(len(others)))]
            tasks.append(ScoringTask(ScoreItem(latent, explanation_pool[borrowed], activating, negative),
                                     row["explanation_id"], SHUFFLED, borrowed))
    return tasks


def judged_subset(tasks: Sequence[ScoringTask], per_class: int | None) -> list[ScoreItem]:
    """What the LLM judges: a spread of each class (activation quantiles for the activating examples); the
    own and the shuffled explanation of a latent see the same examples."""
    return [ScoreItem(t.item.latent, t.item.explanation,
                      evenly_spaced(t.item.activating, per_class, key=lambda s: s.example.quantile),
                      evenly_spaced(t.item.negatives, per_class)) for t in tasks]


def score_rows(sae: str, task: ScoringTask, score: LatentScore, keys: Mapping) -> dict:
    """One `scores` row; `keys`: explainer, explainer_model, mode, judge, scorer_config, created_at."""
    metrics = score.metrics
    return {
        "sae": sae, "latent": score.latent, "scorer": score.scorer, "explanation_id": task.explanation_id,
        "control": task.control, "control_latent": task.control_latent, "status": score.status,
        "error": score.error, **keys,
        **{m: getattr(metrics, m) if metrics else None for m in SCORE_METRICS + COUNTS},
        "ci_low": score.ci_low, "ci_high": score.ci_high, "auc_ci_low": score.auc_ci_low,
        "auc_ci_high": score.auc_ci_high, "correlation": score.correlation,
        "correlation_ci_low": score.correlation_ci_low, "correlation_ci_high": score.correlation_ci_high,
        "n_examples": score.n_examples, "n_failed": score.n_failed,
        "call_ids": score.call_ids, "prompt_tokens": score.prompt_tokens, "completion_tokens": score.completion_tokens,
        "log_prob_gain": score.log_prob_gain, "log_prob_gain_ci_low": score.log_prob_gain_ci_low,
        "log_prob_gain_ci_high": score.log_prob_gain_ci_high, "log_prob_gain_per_token": score.log_prob_gain_per_token,
    }


def judgment_rows(sae: str, task: ScoringTask, score: LatentScore, keys: Mapping) -> list[dict]:
    return [{
        "sae": sae, "latent": score.latent, "scorer": score.scorer, "explanation_id": task.explanation_id,
        "judge": keys["judge"], "scorer_config": keys["scorer_config"], "control": task.control,
        "example_set": j.example_set, "example_idx": j.example_idx, "label": j.label, "prediction": j.prediction,
        "probability": j.probability, "error": j.error,
    } for j in score.judgments]
