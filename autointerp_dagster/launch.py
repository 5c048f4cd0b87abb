"""`autointerp run`: the pipeline's Dagster jobs executed in order in this process, on the instance the UI uses.

Each run is an ordinary Dagster run (metadata, plots and lineage in the UI). Runs left behind by a killed
process are released first; what can be checked before the first step (the judge, every coder to cache against
the model's structure) is checked then; while a run waits for a pool, `PoolWatch` says who holds it.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.utils import make_new_run_id

from . import definitions as defs_module
from .core.cache.plan import plan_caches
from .core.config import Settings
from .core.errors import RunFailedError, UserError
from .core.explain.explainers import explainer_keys
from .core.preflight import check, coder_problems, judge_problems
from .core.reporting.similarity import format_similarity
from .core.reporting.summary import OFFLINE_JUDGE_NOTE, format_summary
from .core.store import Store, open_store, reads
from .definitions import defs
from .instance import LLM_POOL, MODEL_POOL, set_pool_limits
from .jobs import (
    cache_job,
    coder_comparison_job,
    explain_job,
    inputs_job,
    score_job,
    similarity_job,
    summary_job,
)
from .liveness import HOST_TAG, PoolWatch, release_dead_runs
from .partitions import SAE_DIMENSION, latent_range_partitions, sae_range_key
from .planning import cache_run_requests
from .stages import STAGES

# dagster-celery registers its step task again for each step; Celery 5.7 warns, and keeps the first (the same).
warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
POOLS = (MODEL_POOL, LLM_POOL)


def run_pipeline(settings: Settings, force: bool = False, saes: list[str] | None = None,
                 stages: list[str] | None = None) -> int:
    """The stages' jobs in order: inputs, caches of new, stale or damaged coders, explanations then scores per
    (coder, latent range), similarity, summaries with latent pages (which show the matched latents), the coder
    comparison. `saes` limits the
    coders, `stages` the stages (a stage whose inputs are missing says which to run first)."""
    instance = DagsterInstance.get()
    set_pool_limits(instance, settings)
    release_dead_runs(instance)
    wanted = set(stages or STAGES)
    started = time.monotonic()

    def step(title: str) -> None:
        print(f"\n== [{time.monotonic() - started:6.0f} s] {title}", flush=True)

    def execute(job, **kwargs) -> None:
        execute_job(instance, job.name, settings.executor.kind == "celery", **kwargs)

    def plan():
        found = plan_caches(settings, list(instance.get_dynamic_partitions(SAE_DIMENSION)))
        if saes:
            unknown = sorted(set(saes) - set(found.coders))
            if unknown:
                raise UserError(f"no coder {unknown}; the coders are: {', '.join(found.coders) or 'none'}")
        chosen = [key for key in found.coders if not saes or key in saes]
        return found, chosen, [key for key in (found.coders if force else found.to_cache) if key in chosen]

    found, chosen, stale = plan()
    check(judge_problems(settings.llm) + coder_problems(settings, {k: found.coders[k] for k in stale}))
    checked = set(stale)
    if "inputs" in wanted:
        step(f"{inputs_job.name}: corpus and embedded SAEs")
        execute(inputs_job)
    found, chosen, stale = plan()
    check(coder_problems(settings, {k: found.coders[k] for k in stale if k not in checked}))
    if not found.coders:
        raise UserError(f"no sparse coders found: put some in {settings.watched_sae_dir} or list them under "
                        "`coders.paths`")
    if found.new:
        instance.add_dynamic_partitions(SAE_DIMENSION, found.new)
    all_keys = list(instance.get_dynamic_partitions(SAE_DIMENSION))
    if "cache" in wanted:
        for key, problems in found.corrupt.items():
            if key in chosen:
                print(f"{key}: its activation cache is damaged ({'; '.join(problems)}): caching it again")
        step(f"{cache_job.name}: {len(stale)} of {len(chosen)} coder(s) to cache: {stale}")
        for request in cache_run_requests(stale, all_keys, cache_job.name):
            execute(cache_job, tags=request.tags)
    ranges = latent_range_partitions.get_partition_keys()
    partitions = [(key, range_key) for key in chosen for range_key in ranges]
    for stage, job in (("explain", explain_job), ("score", score_job)):
        if stage in wanted:
            step(f"{job.name}: {len(chosen)} coder(s) x {len(ranges)} latent ranges with {settings.llm.label}")
            if settings.executor.kind == "celery":  # `concurrency.runs` runs at once, their steps on the workers
                execute_runs_at_once(job.name, [sae_range_key(k, r) for k, r in partitions], settings.concurrency.runs)
                continue
            for n, (key, range_key) in enumerate(partitions, start=1):
                print(f"   [{time.monotonic() - started:6.0f} s] {n}/{len(partitions)}: {key} {range_key}", flush=True)
                execute(job, partition_key=sae_range_key(key, range_key))
    if len(found.coders) > 1 and "similarity" in wanted:
        step(f"{similarity_job.name}: each coder's latents matched with the other coders'")
        for key in chosen:
            execute(similarity_job, partition_key=key)
    if "summary" in wanted:
        step(f"{summary_job.name}: per-coder summaries and latent pages")
        for key in chosen:
            execute(summary_job, partition_key=key)
    if len(found.coders) > 1 and "compare" in wanted:
        step(f"{coder_comparison_job.name}: the coders side by side")
        execute(coder_comparison_job)
    print_results(settings, chosen, wanted, len(found.coders) > 1)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Open the results in Dagster: autointerp ui "
          f"(then http://127.0.0.1:3000), browse the latent pages: {settings.pages_dir / 'index.html'} "
          f"(or autointerp pages --serve), or query {settings.results_location}.")
    return 0


def print_results(settings: Settings, keys: list[str], stages: set[str], several: bool) -> None:
    """The caches' table, each coder's summary, and the similarity of coders, as far as the stages made them."""
    store = open_store(settings)
    if stages & {"cache", "explain", "score", "summary"}:
        print_cache_table(store, keys)
    if stages & {"score", "summary"}:
        explainers = [(k.explainer, k.label) for k in explainer_keys(settings)]
        print(f"\nInterpretation: per-latent scores averaged over latents, beside the same latents scored with a "
              f"shuffled explanation, with 95% bootstrap-t intervals over latents (judge {settings.llm.label}); "
              f"then the LLM's explanations against the top-tokens baseline's")
        for key in keys:
            print(format_summary(store, key, explainers, settings.llm.price_table)[0])
        if settings.llm.is_local:
            print("\n" + OFFLINE_JUDGE_NOTE)
    if several and "similarity" in stages:
        print("\nCross-coder similarity: latents matched one-to-one by decoder cosine, mean over matched pairs "
              "[95% bootstrap-t interval]; controls: self-copy, random decoder, random pairing")
        print(format_similarity(store, keys))


def execute_job(instance: DagsterInstance, job_name: str, on_workers: bool, partition_key: str | None = None,
                tags: dict[str, str] | None = None) -> None:
    """Executes one run, watched while it waits for a pool (see liveness.PoolWatch): its steps in this process,
    or `on_workers`, on the Celery workers (the job reconstructed there from its module). A failure caused by the
    inputs raises a UserError with its message, any other a RunFailedError."""
    run_id = make_new_run_id()
    job_def = defs.resolve_job_def(job_name)
    tags = {HOST_TAG: socket.gethostname(), **(tags or {})}
    with PoolWatch(instance, run_id, POOLS):
        if on_workers:
            if partition_key is not None:
                tags.update(job_def.partitions_def.get_tags_for_partition_key(partition_key))
            job = ReconstructableRepository.for_module(defs_module.__name__, "defs").get_reconstructable_job(job_name)
            run = instance.create_run_for_job(job_def=job.get_definition(), run_id=run_id, run_config=QUIET_LOGS,
                                              tags=tags, job_code_origin=job.get_python_origin())
            result = execute_run(job, run, instance)
        else:
            result = job_def.execute_in_process(instance=instance, run_config=QUIET_LOGS, raise_on_error=False,
                                                run_id=run_id, tags=tags, partition_key=partition_key)
    if result.success:
        return
    failures = [e for e in result.all_events if e.is_step_failure]
    for event in failures:
        error = event.step_failure_data.error
        while error is not None:
            if error.cls_name in user_error_names():
                raise UserError(f"{job_def.name} ({event.step_key}): {error.message.strip()}")
            error = error.cause
    where = f" at step {failures[0].step_key}" if failures else ""
    raise RunFailedError(f"run {run_id} of {job_def.name} failed{where}; see the log above or the Dagster UI "
                         "(autointerp ui)")


def execute_runs_at_once(job_name: str, partition_keys: list, at_once: int) -> None:
    """Runs of `job_name`, one a partition, `at_once` of them in progress, each coordinated by a process forked
    from this one (Dagster's run coordination is not thread-safe) while the Celery workers execute the steps."""
    started, done = time.monotonic(), 0
    with ProcessPoolExecutor(at_once, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_coordinate_run, job_name, key) for key in partition_keys]
        for future in as_completed(futures):
            if future.exception() is not None:  # the first failure ends the stage: runs not yet started never start
                for pending in futures:
                    pending.cancel()
                future.result()
            done += 1
            print(f"   [{time.monotonic() - started:6.0f} s] {done}/{len(partition_keys)} runs done", flush=True)


def _coordinate_run(job_name: str, partition_key) -> None:
    with DagsterInstance.get() as instance:
        execute_job(instance, job_name, True, partition_key=partition_key)


def user_error_names() -> set[str]:
    """Class names of every UserError, to recognise one in a failed step's serialised error."""
    names, todo = set(), [UserError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def print_cache_table(store: Store, keys: list[str]) -> None:
    table = reads.cache_summaries(store).to_pylist()
    print("\nActivation caches")
    print(f"{'coder':44} {'tokens':>9} {'nonzeros':>11} {'dead':>6} {'tok/s':>7} {'MB':>6} {'stats':>6}")
    for row in table:
        if row["sae"] in keys:
            print(f"{row['sae']:44} {row['encoded_tokens']:>9} {row['nnz']:>11} {row['dead_fraction']:>6.1%} "
                  f"{row['tokens_per_s']:>7.0f} {row['bytes_on_disk'] / 1e6:>6.1f} {row['latents_with_stats']:>6}")
