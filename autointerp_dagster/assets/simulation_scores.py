"""Simulation scores per (sae, latent range): OpenAI-style simulation of each explanation (and its shuffled
control) on the held-out windows, rows with scorer 'simulation' in the scores and judgments tables. Off unless
`simulation.enabled` (it costs a prompt per judged window); then the materialisation records that it skipped."""

import time
from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.explain.explainers import explainer_id
from ..core.keys import utc_now
from ..core.reporting.summary import mean_by_control
from ..core.scorers.runs import (
    judged_subset,
    judgment_rows,
    score_rows,
    scorer_config_id,
    scoring_tasks,
)
from ..core.scorers.simulation import SIMULATION
from ..core.scorers.simulation import simulation_scores as simulate
from ..core.store import reads, writes
from ..instance import LLM_POOL
from ..partitions import sae_latent_partitions, same_sae_every_range
from ..resources import LLMResource, SettingsResource, StoreResource
from ..workers import queue_tags
from .explanations import explanations
from .progress import throttled_log
from .slices import CACHE_DEP, partition_latents, read_example_sets


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
    op_tags=queue_tags(LLM_POOL),  # its Celery queue (workers.py)
    deps=[AssetDep(explanations, partition_mapping=same_sae_every_range()), CACHE_DEP],
    automation_condition=AutomationCondition.eager(),
    check_specs=[AssetCheckSpec("correlation_in_range", asset="simulation_scores",
                                description="Every correlation and its interval lie in [-1, 1].")],
    description="Simulation scoring (OpenAI style, off unless simulation.enabled): the judge predicts each token's "
    "activation from the explanation; Pearson correlation with the true activations over the held-out windows, "
    "beside a shuffled explanation (DuckDB tables scores and judgments, scorer 'simulation').",
)
def simulation_scores(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
                      llm: LLMResource) -> MaterializeResult:
    config = settings.get()
    if not config.simulation.enabled:
        context.log.info("simulation.enabled is false: nothing simulated")
        return MaterializeResult(metadata={"enabled": False},
                                 check_results=[AssetCheckResult(check_name="correlation_in_range", passed=True)])
    explainer_name = explainer_id(config.explainer, config.steering)
    judged_per_class = config.scoring.examples_per_class
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    explained, pool = reads.explained(db, sae, start, end, explainer_name, config.llm.label)
    seed = config.scoring.seed
    tasks = scoring_tasks(sae, explained, read_example_sets(db, sae, start, end), pool, config.sampling.negatives, seed)
    scorer_config = scorer_config_id(config.simulation, judged_per_class, config.sampling.negatives, SIMULATION)
    keys = {"explainer": explainer_name, "explainer_model": config.llm.label, "judge": config.llm.label,
            "mode": SIMULATION, "created_at": utc_now(), "scorer_config": scorer_config}
    context.log.info(f"simulating {len(tasks)} explanation(s) (own and shuffled) of {sae} {range_key} "
                     f"with {config.llm.label}")
    started = time.monotonic()
    scores = simulate(llm.client(db), judged_subset(tasks, judged_per_class), config.simulation.max_level, seed,
                      throttled_log(context, "simulation requests"), config.simulation.mode)
    rows = [score_rows(sae, task, score, keys) for task, score in zip(tasks, scores)]
    judged = [j for task, score in zip(tasks, scores) for j in judgment_rows(sae, task, score, keys)]
    # This run owns the simulation rows of its range made with this explainer, judge and simulation config.
    owner = writes.ScoreOwner(scorers=(SIMULATION,), judges=(config.llm.label,), scorer_configs=(scorer_config,),
                              explainers=((explainer_name, config.llm.label),))
    writes.write_scores(db, sae, start, end, owner, rows, judged)
    bad = [(r["latent"], r["control"]) for r in rows
           for m in ("correlation", "correlation_ci_low", "correlation_ci_high")
           if r[m] is not None and not -1.0 <= r[m] <= 1.0]
    metadata = {"enabled": True, "mode": config.simulation.mode, "latents_scored": len({t.item.latent for t in tasks}),
                "judge": config.llm.label,
                "statuses": dict(Counter(f"{r['control']}/{r['status']}" for r in rows)),
                "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
                "llm_requests": sum(len(r["call_ids"]) for r in rows),
                "seconds": round(time.monotonic() - started, 1)}
    means = mean_by_control(rows, "correlation")
    metadata.update({f"mean_correlation_{part}": means.get(part) for part in ("own", "shuffled")})
    return MaterializeResult(metadata=metadata, check_results=[AssetCheckResult(
        check_name="correlation_in_range", passed=not bad, metadata={"out_of_range": str(bad[:20])})])
