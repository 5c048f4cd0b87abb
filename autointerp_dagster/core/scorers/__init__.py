"""Scoring explanations per latent: LLM judges (detection, fuzzing) and embedding retrieval."""

from autointerp_dagster.core.scorers.common import (
    DETECTION,
    EMBEDDING,
    FUZZING,
    Judgment,
    LatentScore,
    ScoreItem,
    ScoringExample,
    summarise,
)
from autointerp_dagster.core.scorers.embedding import embedding_scores
from autointerp_dagster.core.scorers.judge import (
    BATCHED,
    PER_EXAMPLE,
    ScorerConfig,
    score_latents,
)

__all__ = [
    "BATCHED",
    "DETECTION",
    "EMBEDDING",
    "FUZZING",
    "PER_EXAMPLE",
    "Judgment",
    "LatentScore",
    "ScoreItem",
    "ScorerConfig",
    "ScoringExample",
    "embedding_scores",
    "score_latents",
    "summarise",
]
