"""The per-SAE summary: what a researcher reads first (counts, mean scores with intervals, LLM use, a plot)."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from ..core.explainers import explainer_id
from ..core.plots import markdown_image, score_distributions
from ..core.report import OFFLINE_JUDGE_NOTE, format_report, sae_report
from ..partitions import SAE_DIMENSION, sae_partitions
from ..resources import SettingsResource, StoreResource
from .scores import scores


@asset(
    group_name="interpretation",
    partitions_def=sae_partitions,
    deps=[AssetDep(scores, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))],
    automation_condition=AutomationCondition.eager(),
    description="Per SAE: latents explained and skipped, mean detection/fuzzing balanced accuracy and AUC and "
    "embedding AUC with 95% bootstrap intervals over latents, LLM calls and tokens, and score histograms.",
)
def sae_summary(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource) -> MaterializeResult:
    config = settings.get()
    report = sae_report(store.get(), context.partition_key, explainer_id(config.explainer_config()))
    text = format_report(report)
    if config.llm.is_local:
        text += "\n\n" + OFFLINE_JUDGE_NOTE
    plot = score_distributions(
        {f"{s.scorer} {s.metric.replace('balanced_accuracy', 'bal. acc.')}": s.values
         for s in report.scorers if s.metric == "balanced_accuracy" or s.scorer == "embedding"},
        context.partition_key,
    )
    metadata = {
        "summary": MetadataValue.md(f"```\n{text}\n```\n\n{markdown_image(plot, 'score distributions')}"),
        "latents_explained": report.latents_explained,
        "latents_skipped": report.latents_skipped,
        "explanation_failures": report.explanations_failed,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
    }
    for summary in report.scorers:
        if summary.mean is not None:
            metadata[f"{summary.scorer}_{summary.metric}"] = round(summary.mean, 4)
    return MaterializeResult(metadata=metadata)
