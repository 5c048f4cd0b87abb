"""Sensors: discover sparse coders and cache them; re-run downstream stages when caches change."""

import json

from dagster import (
    AddDynamicPartitionsRequest,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .jobs import cache_job
from .partitions import SAE_DIMENSION
from .planning import cache_run_requests, plan_caches
from .resources import SettingsResource


@sensor(
    job=cache_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches the SAE folder and the configured SAEs: a new coder gets a partition and is cached; "
    "a coder whose cache was built from other inputs (its files, the model, the corpus) is re-cached. "
    "Downstream stages follow through their automation conditions.",
)
def sae_discovery_sensor(context: SensorEvaluationContext, settings: SettingsResource):
    existing = list(context.instance.get_dynamic_partitions(SAE_DIMENSION))
    plan = plan_caches(settings.get(), existing)
    # The cursor remembers what was already requested, so a failing re-cache is not requested every evaluation.
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    changed = [key for key in plan.changed if requested.get(key) != plan.fingerprints[key]]
    if not plan.new and not changed:
        return SkipReason(f"no new or changed coders among {len(plan.coders)}")
    context.log.info(f"new coders: {plan.new}; changed coders: {changed}")
    cursor = json.dumps({**requested, **{key: plan.fingerprints[key] for key in plan.new + changed}}, sort_keys=True)
    return SensorResult(
        run_requests=cache_run_requests(plan.new + changed, existing + plan.new, cache_job.name),
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SAE_DIMENSION, plan.new)] if plan.new else [],
        cursor=cursor,
    )


automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Materialises downstream partitions (latent stats, examples, explanations, scores, summaries, "
    "cross-coder similarity) once their upstream partitions are new: a new coder's similarity partitions (its "
    "pairs with the coders already there) follow once every coder of the model is explained.",
)
