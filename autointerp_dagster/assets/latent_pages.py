"""The latent pages of a coder: an index of explained latents and a page per latent, opened in a browser."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from ..core.pages import write_pages
from ..partitions import SAE_DIMENSION, sae_partitions
from ..resources import SettingsResource, StoreResource
from .scores import scores
from .summary import sae_summary


@asset(
    group_name="interpretation",
    partitions_def=sae_partitions,
    deps=[AssetDep(scores, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION)), sae_summary],
    automation_condition=AutomationCondition.eager(),
    description="Per SAE: a self-contained HTML pages under $AUTOINTERP_HOME/pages/ (index of explained latents, "
    "sortable and searchable; a page per latent with explanations, scores beside controls, examples shaded by "
    "activation, judges' verdicts, activation histogram).",
)
def latent_pages(context: AssetExecutionContext, settings: SettingsResource,
                  store: StoreResource) -> MaterializeResult:
    pages = write_pages(store.get(), context.partition_key, settings.get().pages_dir,
                        settings.get().llm.price_table)
    return MaterializeResult(metadata={
        "index": MetadataValue.path(str(pages.index)),
        "open": MetadataValue.url(pages.index.resolve().as_uri()),
        "latent_pages": pages.latent_pages,
        "latents_explained": pages.explained,
        "latents_failed": pages.failed,
    })
