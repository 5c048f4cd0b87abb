"""Scores per (sae, latent range): detection, fuzzing and embedding scoring of every explanation."""

import time

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.explainers import explainer_id
from ..core.sampling import evenly_spaced
from ..core.scorers import ScoreItem, ScoringExample, embedding_scores, score_latents
from ..partitions import sae_latent_partitions
from ..instance import LLM_POOL
from ..resources import LLMResource, SettingsResource, StoreResource
from ..core.store.tables import IN_LATENT_RANGE, JUDGMENTS, SCORE_METRICS, SCORES
from .explanations import explanations
from .progress import throttled_log
from .slices import CACHE_DEP, partition_latents, read_example_sets

def score_rows(sae, score, explanation, mode, judge, created_at) -> dict:
    metrics = score.metrics
    return {
        "sae": sae, "latent": score.latent, "scorer": score.scorer,
        "explanation_id": explanation["explanation_id"], "explainer": explanation["explainer"],
        "mode": mode, "judge": judge,
        **{m: getattr(metrics, m) if metrics else None for m in SCORE_METRICS},
        "ci_low": score.ci_low, "ci_high": score.ci_high,
        "auc_ci_low": score.auc_ci_low, "auc_ci_high": score.auc_ci_high,
        "n_examples": score.n_examples, "n_failed": score.n_failed,
        **{f: getattr(metrics, f) if metrics else None
           for f in ("true_positive", "false_positive", "true_negative", "false_negative")},
        "call_ids": score.call_ids, "prompt_tokens": score.prompt_tokens,
        "completion_tokens": score.completion_tokens, "created_at": created_at,
    }


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
    deps=[explanations, CACHE_DEP],
    automation_condition=AutomationCondition.eager(),
    check_specs=[
        AssetCheckSpec("scores_in_range", asset="scores", description="Every metric lies in [0, 1]."),
        AssetCheckSpec("unique_keys", asset="scores",
                       description="One row per (sae, latent, scorer, explanation_id)."),
        AssetCheckSpec("parse_failure_rate", asset="scores",
                       description="Share of judged examples whose answer could not be parsed stays under the bound."),
    ],
    description="Detection and fuzzing (LLM judge: batched 0/1 lists, or per-example P(yes) for judges with logprobs) "
    "and embedding scoring of each explanation on its held-out test set (DuckDB tables scores and judgments).",
)
def scores(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
           llm: LLMResource) -> MaterializeResult:
    config = settings.get()
    scorer_config = config.scorer_config()
    explainer_name = explainer_id(config.explainer_config())
    _, judged_per_class = config.example_limits()
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    explained = {
        row["latent"]: row for row in db.query(
            f"SELECT * FROM explanations WHERE {IN_LATENT_RANGE} AND explainer = ? AND status = 'ok'",
            [sae, start, end, explainer_name]).to_pylist()
    }
    sets = read_example_sets(db, sae, start, end)
    items = []
    for latent, explanation in sorted(explained.items()):
        latent_sets = sets.get(latent)
        if latent_sets is None:
            context.log.warning(f"latent {latent} has an explanation but no examples; re-run examples")
            continue
        negatives = [ScoringExample(e, "random", i) for i, e in enumerate(latent_sets.random_negatives)]
        if config.negatives == "random+hard":
            negatives += [ScoringExample(e, "hard_negative", i) for i, e in enumerate(latent_sets.hard_negative_test)]
        activating = [ScoringExample(e, "test", i) for i, e in enumerate(latent_sets.test)]
        items.append(ScoreItem(latent, explanation["explanation"], activating, negatives))
    judge_items = [  # the LLM judges a spread of the test set; the embedding scorer takes all of it
        ScoreItem(item.latent, item.explanation,
                  evenly_spaced(item.activating, judged_per_class, key=lambda s: s.example.quantile),
                  evenly_spaced(item.negatives, judged_per_class))
        for item in items
    ]

    client = llm.client(db)
    judge = f"{config.llm.label}"
    context.log.info(f"scoring {len(items)} explanation(s) of {sae} {range_key} ({scorer_config.mode}, {judge})")
    results = {
        "detection": score_latents(client, "detection", judge_items, scorer_config,
                                   throttled_log(context, "detection requests")),
        "fuzzing": score_latents(client, "fuzzing", judge_items, scorer_config, throttled_log(context, "fuzzing requests")),
        "embedding": embedding_scores(items, seed=scorer_config.seed),
    }
    created_at = pa.scalar(int(time.time() * 1e6), pa.timestamp("us")).as_py()
    rows, judgment_rows = [], []
    for scorer, latent_scores in results.items():
        mode = "embedding" if scorer == "embedding" else scorer_config.mode
        for score in latent_scores:
            explanation = explained[score.latent]
            rows.append(score_rows(sae, score, explanation, mode, "all-MiniLM-L6-v2" if scorer == "embedding"
                                   else judge, created_at))
            judgment_rows += [{
                "sae": sae, "latent": score.latent, "scorer": scorer,
                "explanation_id": explanation["explanation_id"], "example_set": j.example_set,
                "example_idx": j.example_idx, "label": j.label, "prediction": j.prediction,
                "probability": j.probability, "error": j.error,
            } for j in score.judgments]
    where, params = f"{IN_LATENT_RANGE} AND explainer = ?", [sae, start, end, explainer_name]
    db.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), where, params)
    db.replace_rows("judgments", pa.Table.from_pylist(judgment_rows, schema=JUDGMENTS),
                    f"{IN_LATENT_RANGE} AND explanation_id IN "
                    "(SELECT explanation_id FROM explanations WHERE sae = ? AND explainer = ?)",
                    [sae, start, end, sae, explainer_name])

    out_of_range = [(r["latent"], r["scorer"], m) for r in rows for m in SCORE_METRICS + ("ci_low", "ci_high")
                    if r.get(m) is not None and not 0.0 <= r[m] <= 1.0]
    duplicates = db.duplicate_keys("scores", ("latent", "scorer", "explanation_id"),
                                   IN_LATENT_RANGE, [sae, start, end])
    judged = [j for j in judgment_rows if j["scorer"] != "embedding"]
    failure_rate = sum(j["error"] is not None for j in judged) / len(judged) if judged else 0.0
    metadata = {"latents_scored": len(items), "mode": scorer_config.mode, "judge": judge}
    for scorer, latent_scores in results.items():
        values = [s.metrics.balanced_accuracy for s in latent_scores if s.metrics]
        aucs = [s.metrics.auc for s in latent_scores if s.metrics and s.metrics.auc is not None]
        metadata[f"{scorer}_mean_balanced_accuracy"] = round(sum(values) / len(values), 4) if values else None
        metadata[f"{scorer}_mean_auc"] = round(sum(aucs) / len(aucs), 4) if aucs else None
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(check_name="scores_in_range", passed=not out_of_range,
                             metadata={"out_of_range": str(out_of_range[:20])}),
            AssetCheckResult(check_name="unique_keys", passed=duplicates == 0, metadata={"duplicates": duplicates}),
            AssetCheckResult(check_name="parse_failure_rate", passed=failure_rate <= config.max_parse_failure_rate,
                             severity=AssetCheckSeverity.WARN,
                             metadata={"failure_rate": failure_rate, "bound": config.max_parse_failure_rate}),
        ],
    )
