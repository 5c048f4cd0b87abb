"""Command line: `autointerp run` runs the pipeline's Dagster jobs, `autointerp ui` opens the Dagster UI,
`autointerp config` prints the effective settings, `autointerp compare` pairs two explainers or judges,
`autointerp report` writes (and serves) the latent pages, `autointerp export` writes a Parquet dataset or
Neuronpedia JSON.
`autointerp compare-coders` sets coders (SAEs, MLP neurons) side by side.

`run` and `ui` use the Dagster instance under `$AUTOINTERP_HOME/dagster`, so the runs that `run` makes
are the UI's runs (metadata, plots, lineage), and the UI launches the very same jobs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from .core.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    describe,
    env_names,
    load_settings_with_sources,
    reference_rows,
)
from .core.errors import UserError
from .instance import LLM_POOL, MODEL_POOL, set_pool_limits, use_dagster_home

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class RunFailedError(Exception):
    """A Dagster run that failed for a reason other than the inputs (a bug, a crash): exit status 1."""


POOLS = (MODEL_POOL, LLM_POOL)


def run_pipeline(settings: Settings, force: bool = False) -> int:
    """The jobs in order: inputs, caches of new, stale or damaged coders, explanations then scores per (sae, range),
    summaries. Runs left behind by a killed `autointerp run` are released first; what can be checked before the
    first step (the judge, every coder to cache against the model's structure) is checked then."""
    from dagster import DagsterInstance

    from .core.cache.plan import plan_caches
    from .core.explain.explainers import explainer_keys
    from .core.preflight import check, coder_problems, judge_problems
    from .core.reporting.similarity import format_similarity
    from .core.reporting.summary import OFFLINE_JUDGE_NOTE, format_summary
    from .core.store import ResultsStore
    from .definitions import defs
    from .jobs import (
        cache_job,
        compare_job,
        explain_job,
        inputs_job,
        score_job,
        similarity_job,
        summary_job,
    )
    from .liveness import release_dead_runs
    from .partitions import SAE_DIMENSION, latent_range_partitions, sae_range_key
    from .planning import cache_run_requests

    instance = DagsterInstance.get()
    set_pool_limits(instance, settings)
    release_dead_runs(instance)
    started = time.monotonic()

    def step(title: str) -> None:
        print(f"\n== [{time.monotonic() - started:6.0f} s] {title}", flush=True)

    def execute(job, **kwargs) -> None:
        execute_job(instance, defs.resolve_job_def(job.name), **kwargs)

    def plan():
        found = plan_caches(settings, list(instance.get_dynamic_partitions(SAE_DIMENSION)))
        return found, (list(found.coders) if force else found.to_cache)

    found, stale = plan()
    check(judge_problems(settings.llm) + coder_problems(settings, {k: found.coders[k] for k in stale}))
    checked = set(stale)
    step(f"{inputs_job.name}: corpus and embedded SAEs")
    execute(inputs_job)

    found, stale = plan()
    check(coder_problems(settings, {k: found.coders[k] for k in stale if k not in checked}))
    if not found.coders:
        raise UserError(f"no sparse coders found: put some in {settings.watched_sae_dir} or list them under `saes:`")
    if found.new:
        instance.add_dynamic_partitions(SAE_DIMENSION, found.new)
    all_keys = list(instance.get_dynamic_partitions(SAE_DIMENSION))
    for key, problems in found.corrupt.items():
        print(f"{key}: its activation cache is damaged ({'; '.join(problems)}): caching it again")
    step(f"{cache_job.name}: {len(stale)} of {len(found.coders)} coder(s) to cache: {stale}")
    for request in cache_run_requests(stale, all_keys, cache_job.name):
        execute(cache_job, tags=request.tags)

    ranges = latent_range_partitions.get_partition_keys()
    partitions = [(key, range_key) for key in found.coders for range_key in ranges]
    for job in (explain_job, score_job):
        step(f"{job.name}: {len(found.coders)} SAE(s) x {len(ranges)} latent ranges with {settings.llm.label}")
        for n, (key, range_key) in enumerate(partitions, start=1):
            print(f"   [{time.monotonic() - started:6.0f} s] {n}/{len(partitions)}: {key} {range_key}", flush=True)
            execute(job, partition_key=sae_range_key(key, range_key))
    step(f"{summary_job.name}: per-SAE summaries")
    for key in found.coders:
        execute(summary_job, partition_key=key)
    if len(found.coders) > 1:
        step(f"{similarity_job.name}: each coder's latents matched with the other coders'")
        for key in found.coders:
            execute(similarity_job, partition_key=key)
        step(f"{compare_job.name}: the coders side by side")
        execute(compare_job)

    print_cache_table(settings, list(found.coders))
    store = ResultsStore(settings.db_path)
    explainers = [(k.explainer, k.label) for k in explainer_keys(settings)]
    print(f"\nInterpretation: per-latent scores averaged over latents, beside the same latents scored with a "
          f"shuffled explanation, with 95% bootstrap intervals over latents (judge {settings.llm.label}); "
          f"then the LLM's explanations against the top-tokens baseline's")
    for key in found.coders:
        print(format_summary(store, key, explainers)[0])
    if settings.llm.is_local:
        print("\n" + OFFLINE_JUDGE_NOTE)
    if len(found.coders) > 1:
        print("\nCross-coder similarity: latents matched one-to-one by decoder cosine, mean over matched pairs "
              "[95% bootstrap interval]; controls: self-copy, random decoder, random pairing")
        print(format_similarity(store, list(found.coders)))
    print(f"\nDone in {time.monotonic() - started:.0f} s. Open the results in Dagster: autointerp ui "
          f"(then http://127.0.0.1:3000), browse the latent pages: {settings.reports_dir / 'index.html'} "
          f"(or autointerp report --serve), or query {settings.db_path}.")
    return 0


def execute_job(instance, job_def, **kwargs) -> None:
    """Executes one run in this process, watched while it waits for a pool (see liveness.PoolWatch); a failure
    caused by the inputs raises a UserError with its message, any other a RunFailedError."""
    from dagster._core.utils import make_new_run_id

    from .liveness import HOST_TAG, PoolWatch

    run_id = make_new_run_id()
    tags = {HOST_TAG: socket.gethostname(), **kwargs.pop("tags", {})}
    with PoolWatch(instance, run_id, POOLS):
        result = job_def.execute_in_process(instance=instance, run_config=QUIET_LOGS, raise_on_error=False,
                                            run_id=run_id, tags=tags, **kwargs)
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


def user_error_names() -> set[str]:
    """Class names of every UserError, to recognise one in a failed step's serialised error."""
    names, todo = set(), [UserError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def coders_comparison_text(settings: Settings, keys: list[str]) -> str:
    from .core.explain.explainers import explainer_id
    from .core.reporting.coders import coder_reports, format_coder_comparison
    from .core.similarity import model_coders
    from .core.store import ResultsStore

    reports = coder_reports(ResultsStore(settings.db_path), keys or model_coders(settings),
                            explainer_id(settings.explainer_config()), settings.llm.label)
    return (f"Coders side by side (explainer and judge {settings.llm.label}): mean over each coder's latents, "
            f"95% bootstrap intervals; the control is the same latents scored with a shuffled explanation\n"
            + format_coder_comparison(reports))


def print_cache_table(settings: Settings, keys: list[str]) -> None:
    from .core.store import ResultsStore, reads

    table = reads.cache_summaries(ResultsStore(settings.db_path)).to_pylist()
    print("\nActivation caches")
    print(f"{'sae':44} {'tokens':>9} {'nonzeros':>11} {'dead':>6} {'tok/s':>7} {'MB':>6} {'stats':>6}")
    for row in table:
        if row["sae"] in keys:
            print(f"{row['sae']:44} {row['encoded_tokens']:>9} {row['nnz']:>11} {row['dead_fraction']:>6.1%} "
                  f"{row['tokens_per_s']:>7.0f} {row['bytes_on_disk'] / 1e6:>6.1f} {row['latents_with_stats']:>6}")


def build_reports(settings: Settings, sae: str | None, serve: bool, port: int) -> int:
    """Writes the latent report of one SAE (or of every SAE the store knows), then optionally serves them."""
    from .core.pages import known_saes, reports_server, write_report
    from .core.store import ResultsStore

    store = ResultsStore(settings.db_path)
    saes = [sae] if sae else known_saes(store)
    if not saes:
        print(f"autointerp: no SAE in {settings.db_path}; run the pipeline first", file=sys.stderr)
        return 1
    for key in saes:
        report = write_report(store, key, settings.reports_dir)
        note = f", {report.failed} failed" if report.failed else ""
        print(f"{key}: {report.latent_pages} latent pages ({report.explained} explained{note}) -> {report.index}")
    print(f"all reports: {settings.reports_dir / 'index.html'}")
    if serve:
        server = reports_server(settings.reports_dir, port)
        print(f"serving {settings.reports_dir} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


def export_results(settings: Settings, sae: str | None, fmt: str, out: str | None) -> int:
    """Parquet dataset (with a dataset card) of every chosen SAE, or Neuronpedia JSON per SAE."""
    from .core.pages import export_neuronpedia, export_parquet, known_saes
    from .core.store import ResultsStore

    store = ResultsStore(settings.db_path)
    saes = [sae] if sae else known_saes(store)
    target = Path(out) if out else settings.home / "exports" / fmt
    if fmt == "parquet":
        try:
            print(f"dataset of {len(saes)} SAE(s) -> {export_parquet(store, saes, target)}")
        except ValueError as exc:
            print(f"autointerp: {exc}", file=sys.stderr)
            return 1
    else:
        for key in saes:
            print(f"{key} -> {export_neuronpedia(store, key, target)}")
    return 0


def print_config(settings: Settings, sources: dict[str, str], variables: bool, markdown: bool) -> None:
    if markdown:
        print(settings_reference_markdown())
    elif variables:
        for name, path in env_names().items():
            print(f"{name:48} {'.'.join(path)}")
    else:
        rows = describe(settings, sources)
        width = max(len(r[0]) for r in rows)
        for key, value, source in rows:
            print(f"{key:{width}}  {value}  [{source}]")
        print(f"\neffective explainer ({settings.llm.label}): {settings.explainer_config().model_dump()}")
        print(f"effective scoring: {settings.scorer_config().model_dump()}")


def settings_reference_markdown() -> str:
    """The README's settings table (a test keeps the README equal to it)."""
    lines = ["| setting | variable | default | |", "| --- | --- | --- | --- |"]
    lines += [f"| `{key}` | `{env}` | `{default}` | {doc} |" for key, env, default, doc in reference_rows()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:  # through the environment, so the Dagster code location the command starts reads it too
        os.environ[CONFIG_ENV] = str(Path(args.config).expanduser().resolve())
    try:
        return dispatch(args)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"autointerp: {exc}", file=sys.stderr)
        if not args.debug and not isinstance(exc, ConfigError):
            print("(autointerp --debug ... shows where it was raised)", file=sys.stderr)
        return 2
    except RunFailedError as exc:
        print(f"autointerp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("autointerp: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autointerp", description=__doc__)
    parser.add_argument("--config", help=f"settings file (YAML; default: ${CONFIG_ENV}, else the embedded default)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error in the inputs")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline's jobs on the configured (default: embedded) inputs")
    run.add_argument("--force", action="store_true", help="re-cache coders even when their cache is current")
    ui = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    config = sub.add_parser("config", help="print the effective settings, each with its source")
    config.add_argument("--variables", action="store_true", help="list the AUTOINTERP_* variables instead")
    config.add_argument("--markdown", action="store_true", help="print the settings reference (README table)")
    compare = sub.add_parser("compare", help="compare two explainers, explainer models, judges or scorer configs, "
                             "paired over the latents scored under both")
    compare.add_argument("by", choices=["explainer", "explainer_model", "judge", "scorer_config"])
    compare.add_argument("a")
    compare.add_argument("b")
    compare.add_argument("--metric", default="auc")
    compare.add_argument("--sae", help="one SAE key (default: all)")
    report = sub.add_parser("report", help="write the latent pages (HTML) of one or every SAE; --serve to browse them")
    report.add_argument("--sae", help="one SAE key (default: every SAE in the results)")
    report.add_argument("--serve", action="store_true", help="then serve the reports on 127.0.0.1")
    report.add_argument("--port", type=int, default=8765)
    export = sub.add_parser("export", help="export explanations and scores: a Parquet dataset or Neuronpedia JSON")
    export.add_argument("--sae", help="one SAE key (default: every SAE in the results)")
    export.add_argument("--format", choices=["parquet", "neuronpedia"], default="parquet")
    export.add_argument("--out", help="output folder (default: $AUTOINTERP_HOME/exports/<format>)")
    coders = sub.add_parser("compare-coders", help="coders side by side (e.g. SAEs against MLP neurons): each "
                            "scorer's own score, shuffled control and difference, with intervals")
    coders.add_argument("saes", nargs="*", help="coder keys (default: every coder of the model)")
    return parser


def dispatch(args: argparse.Namespace) -> int:
    settings, sources = load_settings_with_sources()
    if args.command == "config":
        print_config(settings, sources, args.variables, args.markdown)
        return 0
    if args.command == "compare":
        from .core.reporting.compare import compare as paired
        from .core.reporting.compare import format_comparison
        from .core.store import ResultsStore

        results = paired(ResultsStore(settings.db_path), args.by, args.a, args.b, args.metric, args.sae)
        print(format_comparison(args.by, args.a, args.b, results))
        return 0
    if args.command == "report":
        return build_reports(settings, args.sae, args.serve, args.port)
    if args.command == "export":
        return export_results(settings, args.sae, args.format, args.out)
    if args.command == "compare-coders":
        print(coders_comparison_text(settings, args.saes))
        return 0
    use_dagster_home(settings)
    if args.command == "run":
        return run_pipeline(settings, force=args.force)
    return start_ui(settings, args.port)


def start_ui(settings: Settings, port: int) -> int:
    """`dagster dev` (webserver, daemon, sensors) on the project's instance, after releasing dead runs."""
    from dagster import DagsterInstance

    from .liveness import release_dead_runs

    with DagsterInstance.get() as instance:
        set_pool_limits(instance, settings)
        release_dead_runs(instance)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port),
                            "-m", "autointerp_dagster.definitions"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
