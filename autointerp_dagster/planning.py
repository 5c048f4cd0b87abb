"""Cache plans (core/cache/plan.py) turned into Dagster run requests, for the sensor and `autointerp run`."""

from __future__ import annotations

from dagster import RunRequest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)


def cache_run_requests(keys: list[str], all_keys: list[str], job_name: str) -> list[RunRequest]:
    """One caching run per contiguous stretch of `keys` in partition order: a run caches many coders in one pass."""
    positions = sorted(all_keys.index(k) for k in keys)
    stretches: list[list[int]] = []
    for position in positions:
        if stretches and position == stretches[-1][-1] + 1:
            stretches[-1].append(position)
        else:
            stretches.append([position])
    return [
        RunRequest(
            job_name=job_name,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: all_keys[stretch[0]],
                ASSET_PARTITION_RANGE_END_TAG: all_keys[stretch[-1]],
            },
        )
        for stretch in stretches
    ]
