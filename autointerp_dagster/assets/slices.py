"""What the (sae, latent range) assets share: which latents a partition owns and reading its examples.
Widths come from the `activation_caches` table, which the caching step
writes, so every asset that needs them declares `activation_cache` upstream."""

from __future__ import annotations

from dagster import AssetDep, AssetExecutionContext, MultiToSingleDimensionPartitionMapping

from ..core.digest import LatentDigest, digests_from_rows
from ..core.latent_ranges import latent_range
from ..core.sampling import rows_to_latent_examples
from ..core.store import ResultsStore
from ..core.store.tables import IN_LATENT_RANGE
from ..partitions import RANGE_DIMENSION, SAE_DIMENSION
from .activation_cache import activation_cache

CACHE_DEP = AssetDep(activation_cache, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))


def partition_latents(context: AssetExecutionContext, store: ResultsStore) -> tuple[str, str, int, int]:
    """(sae key, range key, first latent, end latent) of a (sae, latent range) partition."""
    keys = context.partition_key.keys_by_dimension
    sae, range_key = keys[SAE_DIMENSION], keys[RANGE_DIMENSION]
    found = store.query("SELECT n_latents FROM activation_caches WHERE sae = ?", [sae]).to_pylist()
    if not found:
        raise RuntimeError(f"{sae} has no activation cache yet: materialise activation_cache for it first")
    start, end = latent_range(found[0]["n_latents"], range_key)
    return sae, range_key, start, end


def read_example_sets(store: ResultsStore, sae: str, start: int, end: int) -> dict:
    rows = store.query("SELECT * FROM examples WHERE sae = ? AND latent >= ? AND latent < ?", [sae, start, end])
    return rows_to_latent_examples(rows.to_pylist())


def read_digests(store: ResultsStore, sae: str, start: int, end: int) -> dict[int, LatentDigest]:
    """The range's latent digests (written by `examples`); empty where none were made."""
    if not store.has_table("latent_digest"):
        return {}
    rows = store.query("SELECT * FROM latent_digest WHERE sae = ? AND latent >= ? AND latent < ?", [sae, start, end])
    return digests_from_rows(rows.to_pylist())


EXPLAINED_BY = "explainer = ? AND backend = ? AND model = ? AND status = 'ok'"  # explanations a scorer reads


def read_explained(store: ResultsStore, sae: str, start: int, end: int, explainer: str,
                   llm_label: str) -> tuple[dict[int, dict], dict[int, str]]:
    """(this range's explained latents -> explanation row, every explained latent of the SAE -> explanation) made
    by `explainer` with the model `llm_label` ("backend:model"); the second is the shuffled control's pool."""
    backend, _, model = llm_label.partition(":")
    params = [explainer, backend, model]
    pool = {r["latent"]: r["explanation"] for r in store.query(
        f"SELECT latent, explanation FROM explanations WHERE sae = ? AND {EXPLAINED_BY}", [sae, *params]).to_pylist()}
    explained = {r["latent"]: r for r in store.query(
        f"SELECT * FROM explanations WHERE {IN_LATENT_RANGE} AND {EXPLAINED_BY}",
        [sae, start, end, *params]).to_pylist()}
    return explained, pool
