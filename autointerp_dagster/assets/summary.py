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
from ..core.plots import markdown_image, recall_by_quantile, score_distributions
from ..core.report import OFFLINE_JUDGE_NOTE, format_report, sae_report
from ..partitions import SAE_DIMENSION, sae_partitions
from ..resources import SettingsResource, StoreResource
from .scores import scores
from .subject_model_scores import subject_model_scores


@asset(
    group_name="interpretation",
    partitions_def=sae_partitions,
    deps=[AssetDep(scores, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION)),
          AssetDep(subject_model_scores, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))],
    automation_condition=AutomationCondition.eager(),
    description="Per SAE: latents explained and skipped; each scorer's mean over latents for the own explanation, "
    "the shuffled-explanation control and their paired difference, with 95% bootstrap intervals; recall by "
    "activation quantile; LLM calls and tokens; plots.",
)
def sae_summary(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource) -> MaterializeResult:
    config = settings.get()
    report = sae_report(store.get(), context.partition_key, explainer_id(config.explainer_config()), config.llm.label)
    text = format_report(report)
    if config.llm.is_local:
        text += "\n\n" + OFFLINE_JUDGE_NOTE
    histograms = score_distributions(
        {f"{s.scorer} {s.metric.replace('balanced_accuracy', 'bal. acc.')}": s.own_values
         for s in report.scorers if s.metric == "balanced_accuracy" or s.scorer == "embedding"},
        f"{context.partition_key}: own explanations",
    )
    recall = recall_by_quantile(report.recall_by_quantile, f"{context.partition_key}: recall by quantile")
    metadata = {
        "summary": MetadataValue.md(f"```\n{text}\n```\n\n{markdown_image(histograms, 'score distributions')}"
                                    f"\n\n{markdown_image(recall, 'recall by activation quantile')}"),
        "latents_explained": report.latents_explained,
        "latents_skipped": report.latents_skipped,
        "explanation_failures": report.explanations_failed,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
    }
    for summary in report.scorers:
        control = summary.control
        for part, (mean, low, high) in (("own", summary.own), (control, summary.shuffled),
                                        (f"own_minus_{control}", summary.difference)):
            if mean is not None:
                metadata[f"{summary.scorer}_{summary.metric}_{part}"] = round(mean, 4)
        if summary.difference[1] is not None:
            suffix = "" if control == "shuffled" else f"_vs_{control}"
            metadata[f"{summary.scorer}_{summary.metric}_difference{suffix}_95ci"] = (
                f"[{summary.difference[1]:.4f}, {summary.difference[2]:.4f}]")
    return MaterializeResult(metadata=metadata)
