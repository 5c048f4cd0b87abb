"""Scores per (sae, latent range): detection, fuzzing and embedding scoring of every explanation, each beside
its shuffled-explanation control. The control borrows explanations of the SAE's other latent ranges, so this
asset depends on the explanations of every range of its SAE."""

import time
from collections import Counter

import pyarrow as pa
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

from ..core.explainers import explainer_id
from ..core.scorers import embedding_scores, score_latents
from ..core.scorers.embedding import EMBEDDING_MODEL
from ..core.scorers.runs import judged_subset, judgment_rows, score_rows, scorer_config_id, scoring_tasks
from ..core.store.tables import IN_LATENT_RANGE, JUDGMENTS, SCORE_METRICS, SCORES
from ..instance import LLM_POOL
from ..partitions import sae_latent_partitions, same_sae_every_range
from ..resources import LLMResource, SettingsResource, StoreResource
from .explanations import explanations
from .progress import throttled_log

OWN_SCORERS = "('detection', 'fuzzing', 'embedding')"  # the scorers whose rows this asset owns
from .slices import CACHE_DEP, partition_latents, read_example_sets, read_explanations


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
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
    scorer_config = config.scorer_config()
    explainer_name = explainer_id(config.explainer_config())
    _, judged_per_class = config.example_limits()
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    by_explainer = "explainer = ? AND backend = ? AND model = ? AND status = 'ok'"
    explainer_params = [explainer_name, config.llm.backend, config.llm.model]
    explained, pool = read_explanations(db, sae, start, end, *explainer_params)
    sets = read_example_sets(db, sae, start, end)
    tasks = scoring_tasks(sae, explained, sets, pool, config.negatives, scorer_config.seed)
    judged = judged_subset(tasks, judged_per_class)
    keys = {"explainer": explainer_name, "explainer_model": config.llm.label, "judge": config.llm.label,
            "scorer_config": scorer_config_id(scorer_config, judged_per_class, config.negatives),
            "created_at": pa.scalar(int(time.time() * 1e6), pa.timestamp("us")).as_py()}
    context.log.info(f"scoring {len(tasks)} explanation(s) (own and shuffled) of {sae} {range_key} "
                     f"({scorer_config.mode}, {config.llm.label})")
    client = llm.client(db)
    results = {
        "detection": (score_latents(client, "detection", judged, scorer_config,
                                    throttled_log(context, "detection requests")), scorer_config.mode, config.llm.label),
        "fuzzing": (score_latents(client, "fuzzing", judged, scorer_config,
                                  throttled_log(context, "fuzzing requests")), scorer_config.mode, config.llm.label),
        "embedding": (embedding_scores([t.item for t in tasks], seed=scorer_config.seed), "embedding",
                      EMBEDDING_MODEL),
    }
    rows, judgment_table = [], []
    for latent_scores, mode, judge in results.values():
        row_keys = {**keys, "mode": mode, "judge": judge}
        for task, score in zip(tasks, latent_scores):
            rows.append(score_rows(sae, task, score, row_keys))
            judgment_table += judgment_rows(sae, task, score, row_keys)
    # This run owns every row of its range made by its scorers with this explainer, these judges and this scorer
    # config (subject_model_scores writes the other scorers' rows).
    where = (f"{IN_LATENT_RANGE} AND scorer IN {OWN_SCORERS} AND explainer = ? AND explainer_model = ? "
             "AND judge IN (?, ?) AND scorer_config = ?")
    params = [sae, start, end, explainer_name, config.llm.label, config.llm.label, EMBEDDING_MODEL,
              keys["scorer_config"]]
    db.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), where, params)
    db.replace_rows("judgments", pa.Table.from_pylist(judgment_table, schema=JUDGMENTS),
                    f"{IN_LATENT_RANGE} AND scorer IN {OWN_SCORERS} AND judge IN (?, ?) AND scorer_config = ? "
                    "AND explanation_id IN "
                    f"(SELECT explanation_id FROM explanations WHERE sae = ? AND {by_explainer})",
                    [sae, start, end, config.llm.label, EMBEDDING_MODEL, keys["scorer_config"], sae,
                     *explainer_params])
    return MaterializeResult(metadata=_metadata(rows, tasks, config.llm.label, scorer_config.mode),
                             check_results=_checks(db, rows, judgment_table, sae, start, end,
                                                   config.max_parse_failure_rate))


def _metadata(rows: list[dict], tasks, judge: str, mode: str) -> dict:
    metadata = {"latents_scored": len({t.item.latent for t in tasks}),
                "controls_scored": sum(t.control != "none" for t in tasks), "mode": mode, "judge": judge,
                "statuses": dict(Counter(f"{r['scorer']}/{r['control']}/{r['status']}" for r in rows))}
    for scorer in ("detection", "fuzzing", "embedding"):
        for control in ("none", "shuffled"):
            aucs = [r["auc"] for r in rows if r["scorer"] == scorer and r["control"] == control
                    and r["auc"] is not None]
            metadata[f"{scorer}_mean_auc_{'own' if control == 'none' else 'shuffled'}"] = (
                round(sum(aucs) / len(aucs), 4) if aucs else None)
    return metadata


def _checks(db, rows, judgment_table, sae, start, end, bound) -> list[AssetCheckResult]:
    out_of_range = [(r["latent"], r["scorer"], m) for r in rows for m in SCORE_METRICS + ("ci_low", "ci_high")
                    if r.get(m) is not None and not 0.0 <= r[m] <= 1.0]
    duplicates = db.duplicate_keys(
        "scores", ("latent", "scorer", "explanation_id", "judge", "scorer_config", "control"),
        IN_LATENT_RANGE, [sae, start, end])
    judged = [j for j in judgment_table if j["scorer"] != "embedding"]
    failure_rate = sum(j["error"] is not None for j in judged) / len(judged) if judged else 0.0
    return [
        AssetCheckResult(check_name="scores_in_range", passed=not out_of_range,
                         metadata={"out_of_range": str(out_of_range[:20])}),
        AssetCheckResult(check_name="unique_keys", passed=duplicates == 0, metadata={"duplicates": duplicates}),
        AssetCheckResult(check_name="parse_failure_rate", passed=failure_rate <= bound,
                         severity=AssetCheckSeverity.WARN, metadata={"failure_rate": failure_rate, "bound": bound}),
    ]
