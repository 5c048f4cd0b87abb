"""Sensors: discover sparse coders and cache them; re-run downstream stages when caches change."""

import json

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .core.cache.plan import plan_caches
from .jobs import cache_job, inputs_job
from .partitions import SAE_DIMENSION
from .planning import cache_run_requests
from .resources import SettingsResource

INPUTS = "(inputs)"  # the cursor's mark for the one inputs run a fresh home needs


@sensor(
    jobs=[cache_job, inputs_job],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches the SAE folder and the configured SAEs: a new coder gets a partition and is cached; "
    "a coder whose cache was built from other inputs (its files, the model, the corpus) or is damaged is re-cached. "
    "Downstream stages follow through their automation conditions. On a fresh home it first requests the inputs "
    "(the corpus, which examples read, and any embedded SAEs).",
)
def sae_discovery_sensor(context: SensorEvaluationContext, settings: SettingsResource):
    existing = list(context.instance.get_dynamic_partitions(SAE_DIMENSION))
    plan = plan_caches(settings.get(), existing)
    # The cursor remembers what was already requested, so a failing re-cache is not requested every evaluation.
    # A damaged cache is requested once per fingerprint too (a second damage of the same inputs waits for a run).
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    inputs = []
    if INPUTS not in requested and context.instance.get_latest_materialization_event(AssetKey("corpus")) is None:
        inputs = [RunRequest(job_name=inputs_job.name)]
        requested = {**requested, INPUTS: "requested"}
    wanted = {**{key: plan.fingerprints[key] for key in plan.changed},
              **{key: f"{plan.fingerprints[key]}:damaged" for key in plan.corrupt}}
    changed = [key for key, mark in wanted.items() if requested.get(key) != mark]
    if not plan.new and not changed and not inputs:
        return SkipReason(f"no new, changed or damaged coders among {len(plan.coders)}")
    context.log.info(f"new coders: {plan.new}; changed or damaged coders: {changed}")
    for key, problems in plan.corrupt.items():
        context.log.warning(f"{key}: its activation cache is damaged ({'; '.join(problems)}): caching it again")
    marks = {**{key: plan.fingerprints[key] for key in plan.new}, **{key: wanted[key] for key in changed}}
    cursor = json.dumps({**requested, **marks}, sort_keys=True)
    return SensorResult(
        run_requests=inputs + cache_run_requests(plan.new + changed, existing + plan.new, cache_job.name),
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
