"""Intruder detection: each latent scored without an explanation (core/scorers/intruder.py), beside a control of
windows that share nothing. Rows in `scores` with scorer `intruder` (no explanation id)."""

from dagster import AssetDep, AssetExecutionContext, AutomationCondition, MaterializeResult, asset

from ..core.keys import stable_id, utc_now
from ..core.sampling.rows import rows_to_latent_examples
from ..core.scorers.intruder import MIXED, OWN, intruder_rows, intruder_tasks, score_intruders
from ..core.store import reads, writes
from ..instance import LLM_POOL
from ..partitions import sae_latent_partitions, same_sae_every_range
from ..resources import LLMResource, SettingsResource, StoreResource
from ..workers import queue_tags
from .examples import examples
from .progress import throttled_log
from .slices import partition_latents

OTHER_LATENTS = 64  # latents of the coder's other ranges whose windows may be intruders


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    pool=LLM_POOL,
    op_tags=queue_tags(LLM_POOL),  # its Celery queue (workers.py)
    deps=[AssetDep(examples, partition_mapping=same_sae_every_range())],  # intruders come from every range
    automation_condition=AutomationCondition.eager(),  # the daemon path scores a new coder's latents too
    description="Intruder detection, with no explanation: the judge names the one window of another latent among "
    "a latent's held-out activating windows; accuracy against chance, beside a control of windows of as many "
    "latents (scores rows with scorer intruder).",
)
def intruder_scores(context: AssetExecutionContext, settings: SettingsResource, store: StoreResource,
                    llm: LLMResource) -> MaterializeResult:
    config = settings.get()
    spec = config.intruder
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    if not spec.enabled:
        return MaterializeResult(metadata={"enabled": False})
    rows = reads.intruder_window_rows(db, sae, start, end, OTHER_LATENTS, 2 * spec.shown, spec.seed)
    windows = {latent: sets.test for latent, sets in rows_to_latent_examples(rows).items()}
    latents = sorted(latent for latent in windows if start <= latent < end)
    tasks = intruder_tasks(windows, latents, spec.shown, spec.tasks, spec.seed)
    context.log.info(f"intruder detection: {len(tasks)} task(s) for {len(latents)} latent(s) of {sae} {range_key} "
                     f"with {config.llm.label}")
    scores = score_intruders(llm.client(db), tasks, latents, spec.max_tokens,
                             on_progress=throttled_log(context, "intruder requests"))
    keys = {"judge": config.llm.label, "scorer_config": f"intruder-{spec.shown + 1}w-{stable_id(spec.identity(), 8)}",
            "created_at": utc_now()}
    writes.write_intruder_scores(db, sae, start, end, keys["judge"], keys["scorer_config"],
                                 intruder_rows(sae, scores, keys))
    metadata = {"latents": len(latents), "tasks": len(tasks), "judge": config.llm.label}
    for kind, name in ((OWN, "own"), (MIXED, "control")):
        accuracies = [s.accuracy for s in scores if s.control == kind and s.accuracy is not None]
        metadata[f"mean_accuracy_{name}"] = sum(accuracies) / len(accuracies) if accuracies else None
    metadata["chance"] = 1 / (spec.shown + 1)
    return MaterializeResult(metadata=metadata)
