"""What the (sae, latent range) assets share: which latents a partition owns and reading its examples.
Widths come from the `activation_caches` table, which the caching step
writes, so every asset that needs them declares `activation_cache` upstream."""

from __future__ import annotations

from dagster import AssetDep, AssetExecutionContext, MultiToSingleDimensionPartitionMapping

from ..core.latent_ranges import latent_range
from ..core.sampling import rows_to_latent_examples
from ..core.store import ResultsStore
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


def read_explanations(store: ResultsStore, sae: str, start: int, end: int, explainer: str, backend: str,
                      model: str) -> tuple[dict[int, dict], dict[int, str]]:
    """(the range's ok explanations by latent, every ok explanation of the SAE by latent: the pool the
    shuffled control borrows from), made by one explainer and model."""
    mine = "explainer = ? AND backend = ? AND model = ? AND status = 'ok'"
    pool = {r["latent"]: r["explanation"] for r in store.query(
        f"SELECT latent, explanation FROM explanations WHERE sae = ? AND {mine}", [sae, explainer, backend, model]
    ).to_pylist()}
    explained = {r["latent"]: r for r in store.query(
        f"SELECT * FROM explanations WHERE sae = ? AND latent >= ? AND latent < ? AND {mine}",
        [sae, start, end, explainer, backend, model]).to_pylist()}
    return explained, pool
