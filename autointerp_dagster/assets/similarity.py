"""Cross-SAE similarity per coder: its latents matched with every other coder of the model, and the controls."""

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core.explain.explainers import explainer_id
from ..core.reporting.plots import markdown_image, similarity_heatmap
from ..core.reporting.similarity import format_similarity_rows
from ..core.similarity import (
    SHARE_THRESHOLD,
    coder_loader,
    coder_similarities,
    model_coders,
    similarity_matrix,
)
from ..core.store import writes
from ..partitions import sae_partitions
from ..resources import SettingsResource, StoreResource
from .activation_cache import activation_cache
from .explanations import explanations


@asset(
    group_name="similarity",
    partitions_def=sae_partitions,
    # Pairs read the other coders' caches and explanations too, so every partition of both is upstream.
    deps=[AssetDep(activation_cache, partition_mapping=AllPartitionMapping()),
          AssetDep(explanations, partition_mapping=AllPartitionMapping())],
    automation_condition=AutomationCondition.eager(),
    description="The coder's latents matched one-to-one with every other coder of its model by decoder cosine "
    "(Hungarian; sparse top-k beyond 8,192 latents), with the activation correlation and explanation similarity "
    "of each matched pair (table latent_matches) and per pair and similarity the mean with a 95% interval and the "
    f"share above {SHARE_THRESHOLD} (table sae_similarity), beside controls: the coder against a copy of itself "
    "and against a random decoder of its shape, and each pair's latents paired at random.",
)
def sae_similarity(context: AssetExecutionContext, settings: SettingsResource,
                   store: StoreResource) -> MaterializeResult:
    config, results = settings.get(), store.get()
    keys = model_coders(config)
    load = coder_loader(config, results, explainer_id(config.explainer, config.steering), config.llm.label)
    found = coder_similarities(context.partition_key, keys, load)
    for key, reason in found.skipped.items():
        context.log.warning(f"skipped {key}: {reason}")
    if found.controls is None:
        return MaterializeResult(metadata={"skipped": MetadataValue.json(found.skipped)})
    writes.write_similarities(results, found.key, found.match_table(), found.summary_table())
    labels = [key.removeprefix(f"{config.alias}/") for key in keys]
    panels = {f"{method} (diagonal: self-copy)" if method == "decoder_cosine" else method:
              similarity_matrix(results, keys, method)[0]
              for method in ("decoder_cosine", "activation_correlation")}
    heatmap = similarity_heatmap(labels, panels, f"{config.alias}: mean over matched latents")
    rows = found.summary_table().to_pylist()
    table = format_similarity_rows(rows)
    metadata = {
        "similarity": MetadataValue.md(f"```\n{table}\n```\n\n{markdown_image(heatmap, 'heatmap')}"),
        "pairs": len(found.pairs),
        "skipped": MetadataValue.json(found.skipped),
    }
    for row in rows:
        if row["mean"] is not None and row["sae_b"] == row["sae_a"]:
            metadata[f"{row['method']}_{row['control']}"] = round(row["mean"], 4)
    return MaterializeResult(metadata=metadata)

