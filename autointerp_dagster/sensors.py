"""Sensors: discover sparse coders and cache them; re-run downstream stages when caches change."""


import json

from dagster import (
    AddDynamicPartitionsRequest,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from .assets.activation_cache import activation_cache
from .core.coders import cache_fingerprint, registered_coders
from .partitions import SAE_DIMENSION
from .resources import SettingsResource


def partition_runs(keys: list[str], all_keys: list[str]) -> list[RunRequest]:
    """One caching run per contiguous stretch of `keys` in partition order, so a run caches many coders at once."""
    positions = sorted(all_keys.index(k) for k in keys)
    stretches: list[list[int]] = []
    for position in positions:
        if stretches and position == stretches[-1][-1] + 1:
            stretches[-1].append(position)
        else:
            stretches.append([position])
    return [
        RunRequest(
            asset_selection=[activation_cache.key],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: all_keys[stretch[0]],
                ASSET_PARTITION_RANGE_END_TAG: all_keys[stretch[-1]],
            },
        )
        for stretch in stretches
    ]


@sensor(
    asset_selection=[activation_cache],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches the SAE folder and the configured SAEs: a new coder gets a partition and is cached; "
    "a coder whose files changed is re-cached. Downstream stages follow through their automation conditions.",
)
def sae_discovery_sensor(context: SensorEvaluationContext, settings: SettingsResource):
    config = settings.get()
    coders = registered_coders(config)
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    existing = list(context.instance.get_dynamic_partitions(SAE_DIMENSION))
    fingerprints = {key: coder.fingerprint() for key, coder in coders.items()}
    new = [key for key in coders if key not in existing]
    # A cache built from other files than the coder's current ones is stale; the cursor remembers what
    # was already requested, so a failing re-cache is not requested again every evaluation.
    changed = [
        key for key in coders
        if key in existing
        and cache_fingerprint(config, key) not in (None, fingerprints[key])
        and requested.get(key) != fingerprints[key]
    ]
    if not new and not changed:
        return SkipReason(f"no new or changed coders among {len(coders)}")
    context.log.info(f"new coders: {new}; changed coders: {changed}")
    cursor = json.dumps({**requested, **{key: fingerprints[key] for key in new + changed}}, sort_keys=True)
    return SensorResult(
        run_requests=partition_runs(new + changed, existing + new),
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SAE_DIMENSION, new)] if new else [],
        cursor=cursor,
    )


automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Materialises downstream partitions (latent stats, and later stages) once their caches are new.",
)
