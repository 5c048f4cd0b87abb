"""Which coders need caching, and why, decided in one place for the sensor and for `autointerp run`.

A cache is current when it was built from the same inputs it would be built from now (the coder's files,
the subject model and the corpus spec) and its files are still the ones written. So replacing a coder's
weights, pointing `model` at other weights under the same alias, or changing the corpus (source, budget,
row length, seed) make the cache stale, a damaged shard makes it corrupt, and the rebuild takes every
downstream stage with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..coders import RegisteredCoder, registered_coders
from ..config import Settings
from ..keys import stable_id
from .reader import ActivationCache, cache_folder, read_manifest


def cache_inputs_fingerprint(settings: Settings, coder: RegisteredCoder) -> str:
    """What a coder's cache is built from; stored in the cache's manifest."""
    inputs = {"coder": coder.fingerprint(), "model": settings.model.name, "corpus": settings.corpus.model_dump()}
    return stable_id(inputs, 16)


@dataclass(frozen=True)
class CachePlan:
    """The coders of the deployment and what their caches need.

    `new`: no partition yet; `changed`: a complete cache built from other inputs; `missing`: a partition
    but no complete cache (never built, its build failed, or it was found damaged while read); `corrupt`:
    a current cache whose files no longer match its manifest, with what differs.
    """

    coders: dict[str, RegisteredCoder]
    fingerprints: dict[str, str]
    new: list[str]
    changed: list[str]
    missing: list[str]
    corrupt: dict[str, list[str]]

    @property
    def to_cache(self) -> list[str]:
        """Every coder whose cache must be (re)built, in key order."""
        return sorted(set(self.new + self.changed + self.missing) | set(self.corrupt))


def plan_caches(settings: Settings, partitions: list[str]) -> CachePlan:
    coders = registered_coders(settings)
    fingerprints = {key: cache_inputs_fingerprint(settings, coder) for key, coder in coders.items()}
    built = {}
    for key in coders:
        if key in partitions:
            manifest = read_manifest(cache_folder(settings.cache_dir, key))
            built[key] = manifest.get("fingerprint") if manifest else None
    current = [key for key, found in built.items() if found is not None and found == fingerprints[key]]
    corrupt = {key: problems for key in current
               if (problems := ActivationCache(cache_folder(settings.cache_dir, key)).verify())}
    return CachePlan(
        coders=coders,
        fingerprints=fingerprints,
        new=[key for key in coders if key not in partitions],
        changed=[key for key, found in built.items() if found is not None and found != fingerprints[key]],
        missing=[key for key, found in built.items() if found is None],
        corrupt=corrupt,
    )
