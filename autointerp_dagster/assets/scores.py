"""Scores per (sae, latent range): detection, fuzzing and embedding scoring of every explanation, each beside
its shuffled-explanation control. The control borrows explanations of the SAE's other latent ranges, so this
asset depends on the explanations of every range of its SAE."""

from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.explain.explainers import BASELINE_BACKEND, ExplainerKey, explainer_keys
from ..core.keys import utc_now
from ..core.reporting.summary import mean_by_control
from ..core.scorers import embedding_scores, score_latents
from ..core.scorers.embedding import EMBEDDING_MODEL
from ..core.scorers.runs import (
    judged_subset,
    judgment_rows,
    score_rows,
    scorer_config_id,
    scoring_tasks,
)
from ..core.store import reads, writes
from ..core.store.tables import SCORE_METRICS
from ..instance import LLM_POOL
from ..partitions import sae_latent_partitions, same_sae_every_range
from ..resources import LLMResource, SettingsResource, StoreResource
from ..workers import queue_tags
from .explanations import explanations
from .progress import throttled_log
from .slices import CACHE_DEP, partition_latents, read_example_sets

LLM_SCORERS = ("detection", "fuzzing")


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
    op_tags=queue_tags(LLM_POOL),  # its Celery queue (workers.py)
    deps=[AssetDep(explanations, partition_mapping=same_sae_every_range()), CACHE_DEP],
    automation_condition=AutomationCondition.eager(),
    check_specs=[
        AssetCheckSpec("scores_in_range", asset="scores", description="Every metric lies in [0, 1]."),
        AssetCheckSpec("unique_keys", asset="scores", description="One row per (sae, latent, scorer, explanation, "
                       "judge, scorer config, control)."),
        AssetCheckSpec("parse_failure_rate", asset="scores",
                       description="Share of judged examples whose answer could not be parsed stays under the bound."),
    ],
    description="Detection and fuzzing (LLM judge) and embedding scoring of each explanation on its held-out "
    "test set, and of a shuffled explanation as the control (DuckDB tables scores and judgments).",
)
def scores(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
           llm: LLMResource) -> MaterializeResult:
    config = settings.get()
    scorer_config = config.scoring
    judged_per_class = config.scoring.examples_per_class
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    sets = read_example_sets(db, sae, start, end)
    explainers = explainer_keys(config)
    common = {"scorer_config": scorer_config_id(scorer_config, judged_per_class, config.sampling.negatives),
              "created_at": utc_now()}
    client = llm.client(db)
    rows, judgment_table, all_tasks = [], [], []
    tasks_of = {}
    for key in explainers:  # the LLM's explanations, then the baseline's: judged alike, each beside its control
        explained, pool = reads.explained(db, sae, start, end, key.explainer, key.label)  # pool: every range's
        tasks_of[key] = scoring_tasks(sae, explained, sets, pool, config.sampling.negatives, scorer_config.seed)
    # Embedding scores of every explainer's tasks at once: their windows are the same, embedded once.
    embedded = iter(embedding_scores([t.item for tasks in tasks_of.values() for t in tasks], seed=scorer_config.seed))
    for key, tasks in tasks_of.items():
        judged = judged_subset(tasks, judged_per_class)
        context.log.info(f"scoring {len(tasks)} explanation(s) (own and shuffled) of {sae} {range_key} by "
                         f"{key.explainer} ({scorer_config.mode}, judge {config.llm.label})")
        # The baseline is judged by fewer LLM scorers by default: its comparison with the LLM needs one judged score.
        judged_by = config.baseline.judged_by if key.backend == BASELINE_BACKEND else LLM_SCORERS
        results = [
            (score_latents(client, scorer, judged, scorer_config,
                           throttled_log(context, f"{scorer} requests ({key.explainer})")),
             scorer_config.mode, config.llm.label) for scorer in judged_by
        ] + [([next(embedded) for _ in tasks], "embedding", EMBEDDING_MODEL)]
        for latent_scores, mode, judge in results:
            row_keys = {**common, "explainer": key.explainer, "explainer_model": key.label, "mode": mode,
                        "judge": judge}
            for task, score in zip(tasks, latent_scores):
                rows.append(score_rows(sae, task, score, row_keys))
                judgment_table += judgment_rows(sae, task, score, row_keys)
        all_tasks += tasks
    # This run owns every row of its range made by these scorers, explainers, judges and scorer config.
    owner = writes.ScoreOwner(scorers=(*LLM_SCORERS, "embedding"), judges=(config.llm.label, EMBEDDING_MODEL),
                              scorer_configs=(common["scorer_config"],),
                              explainers=tuple((k.explainer, k.label) for k in explainers))
    writes.write_scores(db, sae, start, end, owner, rows, judgment_table)
    return MaterializeResult(metadata=_metadata(rows, all_tasks, explainers, config.llm.label, scorer_config.mode),
                             check_results=_checks(db, rows, judgment_table, sae, start, end,
                                                   config.checks.max_parse_failure_rate))


def _metadata(rows: list[dict], tasks, explainers: list[ExplainerKey], judge: str, mode: str) -> dict:
    """Counts, and each explainer's mean AUC per scorer for own and shuffled explanations (the LLM explainer's
    unprefixed, the baseline's prefixed `baseline_`)."""
    metadata = {"latents_scored": len({t.item.latent for t in tasks}),
                "controls_scored": sum(t.control != "none" for t in tasks), "mode": mode, "judge": judge,
                "explainers": ", ".join(k.explainer for k in explainers),
                "statuses": dict(Counter(f"{r['explainer']}/{r['scorer']}/{r['control']}/{r['status']}"
                                         for r in rows))}
    for i, key in enumerate(explainers):
        for scorer in (*LLM_SCORERS, "embedding"):
            means = mean_by_control(rows, "auc", scorer=scorer, explainer=key.explainer)
            for part in ("own", "shuffled"):
                metadata[f"{'baseline_' if i else ''}{scorer}_mean_auc_{part}"] = means.get(part)
    return metadata


def _checks(db, rows, judgment_table, sae, start, end, bound) -> list[AssetCheckResult]:
    out_of_range = [(r["latent"], r["scorer"], m) for r in rows for m in SCORE_METRICS + ("ci_low", "ci_high")
                    if r.get(m) is not None and not 0.0 <= r[m] <= 1.0]
    duplicates = reads.range_duplicates(
        db, "scores", ("latent", "scorer", "explanation_id", "judge", "scorer_config", "control"), sae, start, end)
    judged = [j for j in judgment_table if j["scorer"] != "embedding"]
    failure_rate = sum(j["error"] is not None for j in judged) / len(judged) if judged else 0.0
    return [
        AssetCheckResult(check_name="scores_in_range", passed=not out_of_range,
                         metadata={"out_of_range": str(out_of_range[:20])}),
        AssetCheckResult(check_name="unique_keys", passed=duplicates == 0, metadata={"duplicates": duplicates}),
        AssetCheckResult(check_name="parse_failure_rate", passed=failure_rate <= bound,
                         severity=AssetCheckSeverity.WARN, metadata={"failure_rate": failure_rate, "bound": bound}),
    ]
