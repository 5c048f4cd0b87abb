"""Scores that a language model computes itself, per (sae, latent range): surprisal (the explanation's loss
reduction on the examples) and intervention (the explanation's likelihood after steering the latent). No judge
is asked; they hold the subject model (pool `model`), and by default score with it too. Rows go to the same
`scores` and `judgments` tables as the judge's scorers, beside the same shuffled-explanation control (and, for
intervention, a random-latent control); steering details go to the `steering` table."""

from collections import Counter

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.coders import load_coder, lookup
from ..core.explain.explainers import explainer_id
from ..core.keys import utc_now
from ..core.models.subject import load_subject_model
from ..core.reporting.summary import mean_by_control
from ..core.scorers.runs import judgment_rows, score_rows, scoring_tasks
from ..core.scorers.subject_runs import (
    score_with_language_models,
    subject_scorer_config_id,
)
from ..core.store import reads, writes
from ..instance import MODEL_POOL
from ..partitions import sae_latent_partitions, same_sae_every_range
from ..resources import SettingsResource, StoreResource, SubjectModelResource
from ..workers import queue_tags
from .examples import examples
from .explanations import explanations
from .slices import CACHE_DEP, partition_latents, read_example_sets


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=MODEL_POOL,
    op_tags=queue_tags(MODEL_POOL),  # its Celery queue (workers.py)
    deps=[AssetDep(explanations, partition_mapping=same_sae_every_range()), examples, CACHE_DEP],
    automation_condition=AutomationCondition.eager(),
    description="Surprisal (loss reduction of the held-out examples under a base LM given the explanation, AUC "
    "activating vs not) and intervention (log P(explanation | steered) - log P(explanation | clean) after "
    "steering the latent to a KL target) of each explanation, beside the shuffled-explanation control and, for "
    "intervention, a random-latent control (tables scores, judgments, steering).",
)
def subject_model_scores(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
                         subject_model: SubjectModelResource) -> MaterializeResult:
    config = settings.get()
    chosen = config.subject_scorers
    if not chosen.scorers:
        return MaterializeResult(metadata={"scorers": "none (subject_scorers.scorers is empty)"})
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    explainer_name = explainer_id(config.explainer, config.steering)
    explained, pool = reads.explained(db, sae, start, end, explainer_name, config.llm.label)
    # The shuffled explanation is the one every scorer of this latent borrows: scoring.seed picks it.
    tasks = scoring_tasks(sae, explained, read_example_sets(db, sae, start, end), pool, config.sampling.negatives,
                          config.scoring.seed)
    subject = subject_model.load()
    judge = chosen.scoring_model or config.model.name
    scorer_lm = subject
    if judge != config.model.name:
        scorer_lm = load_subject_model(judge, config.models_dir, config.model.device, config.model.dtype)
    scorer_config = subject_scorer_config_id(chosen, config.steering, config.sampling.negatives, config.scoring.seed)
    keys = {"explainer": explainer_name, "explainer_model": config.llm.label, "judge": judge,
            "scorer_config": scorer_config, "created_at": utc_now()}
    context.log.info(f"{', '.join(chosen.scorers)} of {len(tasks)} explanation(s) (own and shuffled) of {sae} "
                     f"{range_key}, scoring LM {judge}")
    coder = None
    if "intervention" in chosen.scorers:
        coder = load_coder(lookup(config, [sae])[sae].source, base_model=subject.body, device=subject.device)
    result = score_with_language_models(subject, scorer_lm, coder, sae, tasks, chosen, config.steering)
    rows, judgment_table = [], []
    for scorer, pairs in result.scored.items():
        row_keys = {**keys, "mode": scorer}
        for task, score in pairs:
            rows.append(score_rows(sae, task, score, row_keys))
            judgment_table += judgment_rows(sae, task, score, row_keys)
    steering_table = [_steering_row(sae, o, result.module, scorer_config, config.steering.kl_target)
                      for o in result.steered]
    timings = {f"{scorer}_seconds": round(seconds, 1) for scorer, seconds in result.seconds.items()}
    # This run owns its range's rows of the scorers it ran, with this scoring LM and configuration.
    owner = writes.ScoreOwner(scorers=tuple(chosen.scorers), judges=(judge,), scorer_configs=(scorer_config,),
                              explainers=((explainer_name, config.llm.label),))
    writes.write_scores(db, sae, start, end, owner, rows, judgment_table)
    writes.write_steering(db, sae, start, end, scorer_config, steering_table)
    return MaterializeResult(metadata=_metadata(rows, steering_table, judge, timings, len(explained)))


def _steering_row(sae: str, outcome, module: str, scorer_config: str, kl_target: float) -> dict:
    return {"sae": sae, "latent": outcome.latent, "steered_latent": outcome.steered_latent, "control": outcome.control,
            "scorer_config": scorer_config, "module": module, "strength": outcome.strength, "kl": outcome.kl,
            "kl_target": kl_target, "search_steps": outcome.search_steps,
            "prompt_sets": [p.set_name for p in outcome.prompts], "prompt_idx": [p.idx for p in outcome.prompts],
            "clean": outcome.clean, "steered": outcome.steered,
            "promoted_tokens": [t for t, _ in outcome.promoted], "promoted_gains": [g for _, g in outcome.promoted]}


def _metadata(rows: list[dict], steering_table: list[dict], judge: str, timings: dict, n_latents: int) -> dict:
    """Mean per scorer and control of each scorer's number (AUC; intervention also its log-prob gain)."""
    metadata = {"latents_scored": n_latents, "scoring_lm": judge, **timings,
                "statuses": dict(Counter(f"{r['scorer']}/{r['control']}/{r['status']}" for r in rows))}
    for scorer, metric in (("surprisal", "auc"), ("intervention", "auc"), ("intervention", "log_prob_gain"),
                           ("intervention", "log_prob_gain_per_token")):
        for part, mean in mean_by_control(rows, metric, scorer=scorer).items():
            metadata[f"{scorer}_mean_{metric}_{part}"] = mean
    if steering_table:
        metadata["intervention_mean_kl"] = round(sum(r["kl"] for r in steering_table) / len(steering_table), 4)
    return metadata
