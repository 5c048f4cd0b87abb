"""Every coder of the model side by side (SAE latents against MLP neurons, raw or top-k): the summary that
answers "which coder's latents are more interpretable", each beside its own shuffled-explanation control."""

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core.explain.explainers import explainer_id
from ..core.reporting.coders import coder_summaries, format_coder_comparison
from ..core.similarity import model_coders
from ..resources import SettingsResource, StoreResource
from .summary import sae_summary


@asset(
    group_name="interpretation",
    deps=[sae_summary],  # every coder's summary (all partitions)
    automation_condition=AutomationCondition.eager(),
    description="Coders side by side: per coder, each scorer's mean own score, shuffled-explanation control and "
    "their difference with 95% bootstrap-t intervals over that coder's latents (also `autointerp compare-coders`).",
)
def coder_comparison(context: AssetExecutionContext, settings: SettingsResource,
                     store: StoreResource) -> MaterializeResult:
    config = settings.get()
    keys = model_coders(config)
    summaries = coder_summaries(store.get(), keys, explainer_id(config.explainer, config.steering), config.llm.label)
    metadata = {"comparison": MetadataValue.md(f"```\n{format_coder_comparison(summaries)}\n```"),
                "coders": len(keys)}
    for summary in summaries:
        for s in summary.scorers:
            if s.difference[0] is not None:
                metadata[f"{summary.sae} {s.scorer} {s.metric} own_minus_shuffled"] = round(s.difference[0], 4)
    return MaterializeResult(metadata=metadata)
