"""Partitions: a dynamic `sae` dimension (one key per sparse coder) and a fixed `latent_range` dimension.

The latent-range dimension splits every coder into the same number of contiguous ranges
(`00-of-08` ... `07-of-08`) whatever its width, so every (sae, range) partition is meaningful.
Partitions are defined when the code location loads, so their count is read from the settings
then (the same file and variables the resources read; see `SettingsResource`).
"""

from __future__ import annotations

from dagster import (
    AllPartitionMapping,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from .core.latent_ranges import range_keys
from .resources.settings import SettingsResource

SAE_DIMENSION = "sae"
RANGE_DIMENSION = "latent_range"
LATENT_RANGES = SettingsResource().get().coders.latent_ranges

sae_partitions = DynamicPartitionsDefinition(name=SAE_DIMENSION)
latent_range_partitions = StaticPartitionsDefinition(range_keys(LATENT_RANGES))
sae_latent_partitions = MultiPartitionsDefinition(
    {SAE_DIMENSION: sae_partitions, RANGE_DIMENSION: latent_range_partitions}
)


def sae_range_key(sae: str, latent_range: str) -> MultiPartitionKey:
    return MultiPartitionKey({SAE_DIMENSION: sae, RANGE_DIMENSION: latent_range})


def same_sae_every_range() -> MultiPartitionMapping:
    """A (sae, range) partition that reads every latent range of its own SAE upstream."""
    return MultiPartitionMapping({
        SAE_DIMENSION: DimensionPartitionMapping(SAE_DIMENSION, IdentityPartitionMapping()),
        RANGE_DIMENSION: DimensionPartitionMapping(RANGE_DIMENSION, AllPartitionMapping()),
    })
