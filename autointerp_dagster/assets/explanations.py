"""Explanations per (sae, latent range): the LLM explains each sampled latent from its explainer set."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.explain.best_of import HeldOut, explain_best_of
from ..core.explain.digest import steering_settings_id, uses_steering
from ..core.explain.explainers import (
    ExplainerKey,
    ExplainItem,
    baseline_explanations,
    baseline_key,
    explain_latents,
    explainer_id,
    explanation_id,
)
from ..core.keys import utc_now
from ..core.reporting.best_of import chosen_and_first
from ..core.sampling import evenly_spaced
from ..core.store import reads, writes
from ..instance import LLM_POOL
from ..partitions import sae_latent_partitions
from ..resources import LLMResource, SettingsResource, StoreResource
from ..workers import queue_tags
from .examples import examples
from .progress import throttled_log
from .slices import CACHE_DEP, partition_latents, read_digests, read_example_sets


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
    op_tags=queue_tags(LLM_POOL),  # its Celery queue (workers.py)
    deps=[examples, CACHE_DEP],
    automation_condition=AutomationCondition.eager(),
    check_specs=[
        AssetCheckSpec("parse_failure_rate", asset="explanations",
                       description="Share of latents whose explanation could not be parsed stays under the bound."),
        AssetCheckSpec("unique_keys", asset="explanations",
                       description="One explanation per (sae, latent, explainer)."),
    ],
    description="One explanation per sampled latent from the LLM, and one from the top-tokens baseline (DuckDB "
    "table explanations, keyed by sae, latent, explainer, backend, model). Unparseable answers are retried once, "
    "then recorded as failures, never as fake explanations.",
)
def explanations(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
                 llm: LLMResource) -> MaterializeResult:
    config = settings.get()
    explainer = config.explainer
    explainer_name = explainer_id(explainer)
    shown = config.explainer.examples
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    sets = read_example_sets(db, sae, start, end)
    digests = read_digests(db, sae, start, end)
    if uses_steering(config) and digests and steering_settings_id(config) not in {
            d.steering_id for d in digests.values()}:
        raise ValueError(f"explainer.output_view is steering, but no latent of {sae} {range_key} has tokens steered "
                         "with these settings in its digest: materialise `examples` for this partition first")
    client = llm.client(db)
    # A quantile-balanced subset; explain_latents shows it in the configured order (strongest first by default).
    # A contrastive explainer also sees its share of neighbour negatives.
    neighbours = "neighbour" in config.sampling.negatives.split("+")
    items = [ExplainItem(latent, evenly_spaced(s.train, shown, key=lambda e: e.quantile),
                         s.hard_negative_train + (s.neighbour_train if neighbours else []), digests.get(latent))
             for latent, s in sorted(sets.items())]
    context.log.info(f"explaining {len(items)} latent(s) of {sae} {range_key} with {config.llm.label}")
    progress = throttled_log(context, "explanation requests")
    key = ExplainerKey(explainer_name, config.llm.backend, config.llm.model)
    best_of = {}
    if explainer.best_of > 1:
        held_out = {latent: HeldOut(s.select, s.select_random) for latent, s in sets.items()}
        results, found = explain_best_of(client, items, explainer, held_out, on_progress=progress)
        draws = _draw_rows(sae, key, found)
        writes.write_explanation_draws(db, sae, start, end, key.explainer, key.backend, key.model, draws)
        best_of = _best_of_metadata(draws)
        if once := len(items) - best_of["best_of_latents_drawn_k_times"]:
            context.log.warning(
                f"best-of-{explainer.best_of}: {once} of {len(items)} latent(s) have no held-out windows and got one "
                f"draw (fewer activating windows than n_train + n_test + 1, or examples sampled before "
                f"sampling.n_select was set: re-materialise examples)")
    else:
        results = explain_latents(client, items, explainer, on_progress=progress)
    made = [(key, results)]
    if config.baseline.tokens:
        made.append((baseline_key(config.baseline.tokens),
                     baseline_explanations(sorted(sets), digests, config.baseline.tokens)))
    orphans = sum(writes.write_explanations(db, sae, start, end, key.explainer, key.backend, key.model,
                                            _rows(sae, key, key_results)) for key, key_results in made)

    failed = [r for r in results if r.status != "ok"]
    rate = len(failed) / len(results) if results else 0.0
    duplicates = reads.range_duplicates(db, "explanations", ("latent", "explainer", "backend", "model"), sae, start,
                                        end)
    return MaterializeResult(
        metadata={
            "latents_explained": len(results) - len(failed),
            "latents_failed": len(failed),
            "orphaned_scores_deleted": orphans,
            "explainer": explainer_name,
            "llm": f"{config.llm.label}",
            "prompt_tokens": sum(r.prompt_tokens for r in results),
            "completion_tokens": sum(r.completion_tokens for r in results),
            "sample": "\n".join(f"{r.latent}: {r.explanation}" for r in results[:10] if r.explanation) or "(none)",
            **best_of,
        },
        check_results=[
            AssetCheckResult(check_name="parse_failure_rate", passed=rate <= config.checks.max_parse_failure_rate,
                             severity=AssetCheckSeverity.WARN,
                             metadata={"failure_rate": rate, "bound": config.checks.max_parse_failure_rate,
                                       "errors": "\n".join(f"{r.latent}: {r.error}" for r in failed[:10])}),
            AssetCheckResult(check_name="unique_keys", passed=duplicates == 0, metadata={"duplicates": duplicates}),
        ],
    )


def _rows(sae: str, key: ExplainerKey, results) -> list[dict]:
    """The explanations table's rows of one explainer's results."""
    created = utc_now()
    return [{
        "sae": sae, "latent": r.latent, "explainer": key.explainer,
        "explanation_id": explanation_id(sae, r.latent, key.explainer, key.model, r.explanation),
        "status": r.status, "explanation": r.explanation, "error": r.error, "raw_answer": r.raw_answer,
        "backend": key.backend, "model": key.model, "call_ids": r.call_ids,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "created_at": created,
    } for r in results]


def _draw_rows(sae: str, key: ExplainerKey, draws) -> list[dict]:
    """The explanation_draws table's rows: every best-of-k draw with its held-out AUCs."""
    return [{"sae": sae, "latent": d.latent, "explainer": key.explainer, "backend": key.backend, "model": key.model,
             "draw": d.draw, "status": d.result.status, "explanation": d.result.explanation, "error": d.result.error,
             "choice_auc": d.choice_auc, "heldout_auc": d.heldout_auc, "chosen": d.chosen,
             "prompt_tokens": d.result.prompt_tokens, "completion_tokens": d.result.completion_tokens}
            for d in draws]


def _best_of_metadata(draws: list[dict]) -> dict:
    """Best-of-k at a glance: how often a later draw won, and the chosen against the first draw on the held-out
    half the choice did not see (the summary gives the interval)."""
    chosen, first, later_won = chosen_and_first(draws)
    metadata = {"best_of_latents_drawn_k_times": len({d["latent"] for d in draws if d["draw"] > 0}),
                "best_of_latents_a_later_draw_won": later_won}
    if len(chosen):
        metadata["best_of_heldout_auc_chosen"] = round(float(chosen.mean()), 4)
        metadata["best_of_heldout_auc_first_draw"] = round(float(first.mean()), 4)
    return metadata
