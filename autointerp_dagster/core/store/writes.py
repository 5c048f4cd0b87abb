"""One write function per results table, each saying which rows its caller owns.

A computation owns a slice of a table (one coder's latent range, made by these explainers, judges and scorer
configurations); a write replaces exactly that slice in one transaction, so a re-run replaces what it wrote
before and results made otherwise (other models, other settings) stay. The slices are defined here and only
here: the Dagster assets hand over rows and never write SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from .results import ResultsStore
from .tables import (
    ACTIVATION_CACHES,
    CORPORA,
    EXAMPLES,
    EXPLANATION_DRAWS,
    EXPLANATIONS,
    IN_LATENT_RANGE,
    JUDGMENTS,
    LATENT_DIGEST,
    LATENT_SAMPLING,
    SCORES,
    STEERING,
)

SEPARATOR = "\x1f"  # joins the parts of a composite key in list_contains (no key holds it)


def _table(rows: Sequence[dict] | pa.Table, schema: pa.Schema) -> pa.Table:
    return rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=schema)


def write_corpus(store: ResultsStore, row: dict) -> None:
    store.replace_rows("corpora", _table([row], CORPORA), "corpus_id = ?", [row["corpus_id"]])


def write_activation_caches(store: ResultsStore, rows: Sequence[dict]) -> None:
    """One row per coder cached; a coder's row replaces its earlier one."""
    store.replace_rows("activation_caches", _table(rows, ACTIVATION_CACHES), "sae IN (SELECT sae FROM incoming_rows)")


def write_latent_stats(store: ResultsStore, sae: str, start: int, end: int, stats: pa.Table) -> None:
    store.replace_rows("latent_stats", stats, IN_LATENT_RANGE, [sae, start, end])


def write_examples(store: ResultsStore, sae: str, start: int, end: int, examples: Sequence[dict],
                   sampling: Sequence[dict], digest: Sequence[dict]) -> None:
    """A latent range's examples, the sampling status of each latent, and the latents' digests."""
    for table, rows, schema in (("examples", examples, EXAMPLES), ("latent_sampling", sampling, LATENT_SAMPLING),
                                ("latent_digest", digest, LATENT_DIGEST)):
        store.replace_rows(table, _table(rows, schema), IN_LATENT_RANGE, [sae, start, end])


def write_explanations(store: ResultsStore, sae: str, start: int, end: int, explainer: str, backend: str,
                       model: str, rows: Sequence[dict]) -> int:
    """Replaces the range's explanations made by (explainer, backend, model), then deletes the scores and
    judgments of explanations that no longer exist; returns how many of those were deleted."""
    store.replace_rows("explanations", _table(rows, EXPLANATIONS),
                       f"{IN_LATENT_RANGE} AND explainer = ? AND backend = ? AND model = ?",
                       [sae, start, end, explainer, backend, model])
    return store.delete_orphan_scores(sae, start, end)


def write_explanation_draws(store: ResultsStore, sae: str, start: int, end: int, explainer: str, backend: str,
                            model: str, rows: Sequence[dict]) -> None:
    """Replaces the range's best-of-k draws made by (explainer, backend, model)."""
    store.replace_rows("explanation_draws", _table(rows, EXPLANATION_DRAWS),
                       f"{IN_LATENT_RANGE} AND explainer = ? AND backend = ? AND model = ?",
                       [sae, start, end, explainer, backend, model])


@dataclass(frozen=True)
class ScoreOwner:
    """The score and judgment rows one scoring computation owns in a latent range: made by these scorers, judges
    and scorer configurations, of explanations by these explainers ((explainer id, "backend:model") pairs)."""

    scorers: tuple[str, ...]
    judges: tuple[str, ...]
    scorer_configs: tuple[str, ...]
    explainers: tuple[tuple[str, str], ...]

    def where(self) -> tuple[str, list]:
        """The scores slice: SQL condition and parameters (after the range's)."""
        made = ("list_contains(?, scorer) AND list_contains(?, judge) AND list_contains(?, scorer_config) AND "
                f"list_contains(?, concat(explainer, '{SEPARATOR}', explainer_model))")
        return made, [list(self.scorers), list(self.judges), list(self.scorer_configs), self._explainer_keys()]

    def judgments_where(self, sae: str) -> tuple[str, list]:
        """The judgments slice: judgments carry the explanation id, not the explainer."""
        made = ("list_contains(?, scorer) AND list_contains(?, judge) AND list_contains(?, scorer_config) AND "
                "explanation_id IN (SELECT explanation_id FROM explanations WHERE sae = ? AND "
                f"list_contains(?, concat(explainer, '{SEPARATOR}', backend, ':', model)))")
        return made, [list(self.scorers), list(self.judges), list(self.scorer_configs), sae, self._explainer_keys()]

    def _explainer_keys(self) -> list[str]:
        return [f"{explainer}{SEPARATOR}{label}" for explainer, label in self.explainers]


def write_scores(store: ResultsStore, sae: str, start: int, end: int, owner: ScoreOwner, scores: Sequence[dict],
                 judgments: Sequence[dict]) -> None:
    """Replaces the owner's scores and their per-example judgments in a latent range."""
    where, params = owner.where()
    store.replace_rows("scores", _table(scores, SCORES), f"{IN_LATENT_RANGE} AND {where}", [sae, start, end, *params])
    where, params = owner.judgments_where(sae)
    store.replace_rows("judgments", _table(judgments, JUDGMENTS), f"{IN_LATENT_RANGE} AND {where}",
                       [sae, start, end, *params])


def write_intruder_scores(store: ResultsStore, sae: str, start: int, end: int, judge: str, scorer_config: str,
                          scores: Sequence[dict]) -> None:
    """Replaces a range's intruder scores (no explanation: keyed by judge and intruder configuration)."""
    store.replace_rows("scores", _table(scores, SCORES),
                       f"{IN_LATENT_RANGE} AND scorer = 'intruder' AND judge = ? AND scorer_config = ?",
                       [sae, start, end, judge, scorer_config])


def write_steering(store: ResultsStore, sae: str, start: int, end: int, scorer_config: str,
                   rows: Sequence[dict]) -> None:
    """The intervention scorer's steered latents of a range, for one subject-scorer configuration."""
    store.replace_rows("steering", _table(rows, STEERING), f"{IN_LATENT_RANGE} AND scorer_config = ?",
                       [sae, start, end, scorer_config])


def write_similarities(store: ResultsStore, sae: str, matches: pa.Table | None, summary: pa.Table) -> None:
    """Every matched pair and similarity summary that involves coder `sae` (it is one side of each pair)."""
    involving = "(sae_a = ? OR sae_b = ?)"
    if matches is not None:
        store.replace_rows("latent_matches", matches, involving, [sae, sae])
    store.replace_rows("sae_similarity", summary, involving, [sae, sae])
