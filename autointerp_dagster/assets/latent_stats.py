"""Per-latent firing statistics in DuckDB, per coder and latent range (what later stages sample from)."""


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from ..core.cache import ActivationCache, cache_folder
from ..core.latent_ranges import latent_range
from ..core.store import writes
from ..partitions import RANGE_DIMENSION, SAE_DIMENSION, sae_latent_partitions
from ..resources import SettingsResource, StoreResource
from .activation_cache import activation_cache


@asset(
    group_name="activations",
    partitions_def=sae_latent_partitions,
    deps=[AssetDep(activation_cache, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))],
    automation_condition=AutomationCondition.eager(),
    description="Firing count, frequency, max and mean activation of each latent in the range "
                "(DuckDB table latent_stats).",
)
def latent_stats(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource) -> MaterializeResult:
    config = settings.get()
    keys = context.partition_key.keys_by_dimension
    sae, range_key = keys[SAE_DIMENSION], keys[RANGE_DIMENSION]
    cache = ActivationCache(cache_folder(config.cache_dir, sae))
    start, end = latent_range(cache.n_latents, range_key)
    stats = cache.latent_stats()
    stats = stats.filter(pc.and_(pc.greater_equal(stats["latent"], start), pc.less(stats["latent"], end)))
    stats = stats.add_column(0, "sae", pa.array([sae] * stats.num_rows, pa.string()))
    writes.write_latent_stats(store.get(), sae, start, end, stats)
    counts = stats["n_activations"].to_numpy()
    live = counts[counts > 0]
    frequencies = stats["frequency"].to_numpy()
    return MaterializeResult(
        metadata={
            "latents": f"{start}-{end - 1}" if end > start else "none",
            "n_latents": int(end - start),
            "dead_latents": int((counts == 0).sum()),
            "median_firing_frequency": float(np.median(frequencies[counts > 0])) if live.size else 0.0,
            "median_activations_per_live_latent": float(np.median(live)) if live.size else 0.0,
        }
    )
