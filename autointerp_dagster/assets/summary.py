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

from ..core.explain.explainers import explainer_keys
from ..core.reporting.cost import llm_cost
from ..core.reporting.plots import (
    markdown_image,
    recall_by_quantile,
    score_distributions,
)
from ..core.reporting.summary import (
    OFFLINE_JUDGE_NOTE,
    baseline_comparison,
    format_summary,
)
from ..partitions import SAE_DIMENSION, sae_partitions
from ..resources import SettingsResource, StoreResource
from .intruder_scores import intruder_scores
from .scores import scores
from .simulation_scores import simulation_scores
from .subject_model_scores import subject_model_scores


@asset(
    group_name="interpretation",
    partitions_def=sae_partitions,
    deps=[AssetDep(a, partition_mapping=MultiToSingleDimensionPartitionMapping(SAE_DIMENSION))
          for a in (scores, subject_model_scores, simulation_scores, intruder_scores)],
    automation_condition=AutomationCondition.eager(),
    description="Per SAE: latents explained and skipped; each scorer's mean over latents for the own explanation, "
    "the shuffled-explanation control and their paired difference, with 95% bootstrap-t intervals over latents, "
    "for the LLM explainer and the top-tokens baseline, and the LLM minus the baseline, paired; recall by activation "
    "quantile; LLM calls and tokens; plots.",
)
def sae_summary(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource) -> MaterializeResult:
    config = settings.get()
    explainers = explainer_keys(config)
    labels = [(k.explainer, k.label) for k in explainers]
    text, coder_summary = format_summary(store.get(), context.partition_key, labels, config.llm.price_table)
    if config.llm.is_local:
        text += "\n\n" + OFFLINE_JUDGE_NOTE
    histograms = score_distributions(
        {f"{s.scorer} {s.metric.replace('balanced_accuracy', 'bal. acc.')}": s.own_values
         for s in coder_summary.scorers if s.metric == "balanced_accuracy" or s.scorer in ("embedding", "simulation")},
        f"{context.partition_key}: own explanations",
    )
    recall = recall_by_quantile(coder_summary.recall_by_quantile, f"{context.partition_key}: recall by quantile")
    metadata = {
        "summary": MetadataValue.md(f"```\n{text}\n```\n\n{markdown_image(histograms, 'score distributions')}"
                                    f"\n\n{markdown_image(recall, 'recall by activation quantile')}"),
        "latents_explained": coder_summary.latents_explained,
        "latents_skipped": coder_summary.latents_skipped,
        "explanation_failures": coder_summary.explanations_failed,
        "prompt_tokens": coder_summary.prompt_tokens,
        "completion_tokens": coder_summary.completion_tokens,
    }
    cost = llm_cost(coder_summary.tokens_by_model, config.llm.price_table)
    if cost.dollars is not None:
        metadata["dollars"] = round(cost.dollars, 4)
        if (per_latent := cost.per(coder_summary.latents_explained)) is not None:
            metadata["dollars_per_latent"] = round(per_latent, 6)
            metadata["dollars_for_1m_latents"] = round(per_latent * 1_000_000)
    if len(explainers) > 1:  # the LLM's own scores minus the top-tokens baseline's, paired over latents
        for c in baseline_comparison(store.get(), context.partition_key, labels[0], labels[1]):
            if c.difference[0] is not None:
                metadata[f"{c.scorer}_{c.metric}_llm_minus_baseline"] = round(c.difference[0], 4)
            if c.difference[1] is not None:
                metadata[f"{c.scorer}_{c.metric}_llm_minus_baseline_95ci"] = (
                    f"[{c.difference[1]:.4f}, {c.difference[2]:.4f}]")
    for scorer in coder_summary.scorers:
        control = scorer.control
        for part, (mean, _low, _high) in (("own", scorer.own), (control, scorer.shuffled),
                                        (f"own_minus_{control}", scorer.difference)):
            if mean is not None:
                metadata[f"{scorer.scorer}_{scorer.metric}_{part}"] = round(mean, 4)
        if scorer.difference[1] is not None:
            suffix = "" if control == "shuffled" else f"_vs_{control}"
            metadata[f"{scorer.scorer}_{scorer.metric}_difference{suffix}_95ci"] = (
                f"[{scorer.difference[1]:.4f}, {scorer.difference[2]:.4f}]")
    return MaterializeResult(metadata=metadata)
