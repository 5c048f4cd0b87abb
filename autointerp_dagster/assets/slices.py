"""What the (sae, latent range) assets share: which latents a partition owns and reading its inputs back.
Widths come from the `activation_caches` table, which the caching step writes, so every asset that needs them
declares `activation_cache` upstream."""

from __future__ import annotations

from dagster import (
    AssetDep,
    AssetExecutionContext,
    MultiToSingleDimensionPartitionMapping,
)

from ..core.errors import UserError
from ..core.explain.digest import LatentDigest, digests_from_rows
from ..core.latent_ranges import latent_range
from ..core.sampling import ExampleSets, rows_to_latent_examples
from ..core.store import ResultsStore, reads
from ..partitions import RANGE_DIMENSION, SAE_DIMENSION
from .activation_cache import activation_cache

CACHE_DEP = AssetDep(activation_cache, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))


def partition_latents(context: AssetExecutionContext, store: ResultsStore) -> tuple[str, str, int, int]:
    """(sae key, range key, first latent, end latent) of a (sae, latent range) partition."""
    keys = context.partition_key.keys_by_dimension
    sae, range_key = keys[SAE_DIMENSION], keys[RANGE_DIMENSION]
    width = reads.coder_width(store, sae)
    if width is None:
        raise UserError(f"{sae} has no activation cache yet: cache it first (`autointerp run --stage cache`, or "
                        "materialise activation_cache in the UI)")
    start, end = latent_range(width, range_key)
    return sae, range_key, start, end


def read_example_sets(store: ResultsStore, sae: str, start: int, end: int) -> dict[int, ExampleSets]:
    return rows_to_latent_examples(reads.example_rows(store, sae, start, end))


def read_digests(store: ResultsStore, sae: str, start: int, end: int) -> dict[int, LatentDigest]:
    return digests_from_rows(reads.digest_rows(store, sae, start, end))
