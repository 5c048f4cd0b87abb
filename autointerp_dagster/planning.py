"""Which coders need caching, decided in one place for the sensor and for `autointerp run`.

A cache is current when it was built from the same inputs it would be built from now: the coder's
files, the subject model and the corpus spec. So replacing a coder's weights, pointing `model` at
other weights under the same alias, or changing the corpus (source, budget, row length, seed) all
make the cache stale, and the rebuild takes every downstream stage with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dagster import RunRequest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from .core.coders import RegisteredCoder, cache_fingerprint, registered_coders
from .core.config import Settings


def cache_inputs_fingerprint(settings: Settings, coder: RegisteredCoder) -> str:
    """What a coder's cache is built from; stored in the cache's manifest."""
    inputs = {"coder": coder.fingerprint(), "model": settings.model, "corpus": settings.corpus.model_dump()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachePlan:
    """The coders of the deployment and what their caches need.

    `new`: no partition yet; `changed`: a complete cache built from other inputs; `missing`: a partition
    but no complete cache (never built, or its build failed).
    """

    coders: dict[str, RegisteredCoder]
    fingerprints: dict[str, str]
    new: list[str]
    changed: list[str]
    missing: list[str]


def plan_caches(settings: Settings, partitions: list[str]) -> CachePlan:
    coders = registered_coders(settings)
    fingerprints = {key: cache_inputs_fingerprint(settings, coder) for key, coder in coders.items()}
    built = {key: cache_fingerprint(settings, key) for key in coders if key in partitions}
    return CachePlan(
        coders=coders,
        fingerprints=fingerprints,
        new=[key for key in coders if key not in partitions],
        changed=[key for key, found in built.items() if found is not None and found != fingerprints[key]],
        missing=[key for key, found in built.items() if found is None],
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
