"""Command line. `autointerp [--config FILE] [--debug] COMMAND`:

- `run` runs the pipeline's Dagster jobs (`--sae KEY` for some coders, `--stage STAGE` for some stages);
- `ui` opens the Dagster UI on the same instance, so the runs `run` makes are the UI's runs and the UI
  launches the very same jobs;
- `config` prints the settings that run, each with its source;
- `compare` pairs two explainers, explainer models, judges or scorer configurations on the same latents
  (without arguments it lists what it can compare); `compare-coders` sets coders side by side;
- `pages` writes (and serves) the latent pages; `export` writes a Parquet dataset or Neuronpedia JSON;
- `compact` merges the LLM cache's files (the parquet store backend);
- `worker` starts a Celery worker for runs on `executor.kind: celery`; `cluster up|down` starts and stops
  Postgres, Redis and two workers on 127.0.0.1 to try it (docs/deploy.md).

A mistake in the inputs prints one paragraph and exits with status 2 (`--debug` adds the traceback); a failed
run exits with 1, an interrupted one with 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path

from .core.config import (
    CONFIG_ENV,
    ENV_PREFIX,
    ConfigError,
    Settings,
    describe,
    env_names,
    load_settings_with_sources,
    reference_rows,
)
from .core.errors import RunFailedError, UserError
from .instance import QUEUES, set_pool_limits, use_dagster_home
from .stages import STAGES


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    parser = argparse.ArgumentParser(prog="autointerp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help=f"settings file (YAML; default: ${CONFIG_ENV}, else the embedded default)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error in the inputs")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline's jobs on the configured (default: embedded) inputs")
    run.add_argument("--force", action="store_true", help="re-cache coders even when their cache is current")
    run.add_argument("--sae", action="append", metavar="KEY", help="only this coder (repeat for more)")
    run.add_argument("--stage", action="append", choices=STAGES, help="only this stage (repeat for more)")
    ui = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    config = sub.add_parser("config", help="print the settings that run, each with its source")
    config.add_argument("--variables", action="store_true", help="list the AUTOINTERP_* variables instead")
    config.add_argument("--markdown", action="store_true", help="print the settings reference (docs/configuration.md)")
    compare = sub.add_parser("compare", help="paired comparison of two explainers, explainer models, judges or "
                             "scorer configs on the latents scored under both; no arguments: what can be compared")
    compare.add_argument("by", nargs="?", choices=["explainer", "explainer_model", "judge", "scorer_config"])
    compare.add_argument("a", nargs="?")
    compare.add_argument("b", nargs="?")
    compare.add_argument("--metric", default="auc")
    compare.add_argument("--sae", help="one coder key (default: all)")
    compare.add_argument("--model-a", help="comparing explainers: A's explainer model (backend:model)")
    compare.add_argument("--model-b", help="comparing explainers: B's explainer model (backend:model)")
    coders = sub.add_parser("compare-coders", help="coders side by side (e.g. SAEs against MLP neurons): each "
                            "scorer's own score, shuffled control and difference, with intervals")
    coders.add_argument("saes", nargs="*", help="coder keys (default: every coder of the model)")
    for name in ("pages", "report"):  # `report` was its name; it still works
        pages = sub.add_parser(name, help="write the latent pages (HTML) of one or every coder; --serve to browse "
                               "them" if name == "pages" else "the old name of `pages`")
        pages.add_argument("--sae", help="one coder key (default: every coder in the results)")
        pages.add_argument("--serve", action="store_true", help="then serve the pages on 127.0.0.1")
        pages.add_argument("--port", type=int, default=8765)
    export = sub.add_parser("export", help="export explanations and scores: a Parquet dataset or Neuronpedia JSON")
    export.add_argument("--sae", help="one coder key (default: every coder in the results)")
    export.add_argument("--format", choices=["parquet", "neuronpedia"], default="parquet")
    export.add_argument("--out", help="output folder (default: $AUTOINTERP_HOME/exports/<format>)")
    sub.add_parser("compact", help="merge the LLM cache's and call log's files (the parquet store backend)")
    worker = sub.add_parser("worker", help="a Celery worker running the steps of runs (executor.kind: celery)")
    worker.add_argument("--queue", action="append", choices=QUEUES, help="a queue to take steps from (repeat; "
                        "default: all): model (steps loading the subject model), llm (the judge's), default")
    worker.add_argument("--name", help="the worker's name (default: from its queues)")
    worker.add_argument("--concurrency", type=int, default=1, help="steps at once (a process each)")
    cluster = sub.add_parser("cluster", help="Postgres, Redis and Celery workers on 127.0.0.1 to try the executor")
    cluster.add_argument("action", choices=["up", "down"])
    cluster.add_argument("--workers", type=int, default=2)
    cluster.add_argument("--folder", help="their data, logs and cluster.env (default: $AUTOINTERP_HOME/cluster)")
    return parser


def dispatch(args: argparse.Namespace) -> int:
    settings, sources = load_settings_with_sources()
    if args.command == "config":
        print_config(settings, sources, args.variables, args.markdown)
        return 0
    if args.command == "compare":
        return compare(settings, args)
    if args.command in ("pages", "report"):
        if args.command == "report":
            print("autointerp: `report` is now `pages`; the old name still works", file=sys.stderr)
        return build_pages(settings, args.sae, args.serve, args.port)
    if args.command == "export":
        return export_results(settings, args.sae, args.format, args.out)
    if args.command == "compare-coders":
        print(coders_comparison_text(settings, args.saes))
        return 0
    if args.command == "compact":
        from .core.store import open_store

        merged = open_store(settings).compact()
        print(", ".join(f"{table}: {n} files merged into one" for table, n in merged.items()) or "nothing to merge")
        return 0
    if args.command == "cluster":
        return local_cluster(settings, args)
    use_dagster_home(settings)
    if args.command == "worker":
        from .workers import start_worker

        return start_worker(settings, args.queue or list(QUEUES), args.name, args.concurrency)
    if args.command == "run":
        from .launch import run_pipeline

        return run_pipeline(settings, force=args.force, saes=args.sae, stages=args.stage)
    if args.command == "ui":
        return start_ui(settings, args.port, ui_environment(settings, sources))
    raise AssertionError(f"no command {args.command}")


def compare(settings: Settings, args: argparse.Namespace) -> int:
    """A paired comparison, or (without a complete pair) the values each column holds."""
    from .core.reporting.compare import comparable, format_comparable, format_comparison
    from .core.reporting.compare import compare as paired
    from .core.store import open_store

    store = open_store(settings)
    if not (args.by and args.a and args.b):
        print(format_comparable(comparable(store, args.sae), args.by))
        return 0
    try:
        results = paired(store, args.by, args.a, args.b, args.metric, args.sae, (args.model_a, args.model_b))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(format_comparison(args.by, args.a, args.b, results))
    return 0


def coders_comparison_text(settings: Settings, keys: list[str]) -> str:
    from .core.explain.explainers import explainer_id
    from .core.reporting.coders import coder_summaries, format_coder_comparison
    from .core.similarity import model_coders
    from .core.store import open_store

    summaries = coder_summaries(open_store(settings), keys or model_coders(settings),
                                explainer_id(settings.explainer, settings.steering), settings.llm.label)
    return (f"Coders side by side (explainer and judge {settings.llm.label}): mean over each coder's latents, "
            f"95% bootstrap-t intervals over latents; the control is the same latents scored with a shuffled "
            f"explanation\n"
            + format_coder_comparison(summaries))


def build_pages(settings: Settings, sae: str | None, serve: bool, port: int) -> int:
    """Writes the latent pages of one coder (or of every coder the store knows), then optionally serves them."""
    from .core.pages import known_saes, pages_server, write_pages
    from .core.store import open_store

    store = open_store(settings)
    saes = [sae] if sae else known_saes(store)
    if not saes:
        raise UserError(f"no coder has results in {settings.results_location} yet: run `autointerp run` first")
    for key in saes:
        pages = write_pages(store, key, settings.pages_dir, settings.llm.price_table)
        note = f", {pages.failed} failed" if pages.failed else ""
        print(f"{key}: {pages.latent_pages} latent pages ({pages.explained} explained{note}) -> {pages.index}")
    print(f"every coder's pages: {settings.pages_dir / 'index.html'}")
    if serve:
        server = pages_server(settings.pages_dir, port)
        print(f"serving {settings.pages_dir} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


def export_results(settings: Settings, sae: str | None, fmt: str, out: str | None) -> int:
    """Parquet dataset (with a dataset card) of every chosen coder, or Neuronpedia JSON per coder."""
    from .core.pages import export_neuronpedia, export_parquet, known_saes
    from .core.store import open_store

    store = open_store(settings)
    saes = [sae] if sae else known_saes(store)
    target = Path(out) if out else settings.home / "exports" / fmt
    if fmt == "parquet":
        try:
            print(f"dataset of {len(saes)} coder(s) -> {export_parquet(store, saes, target)}")
        except ValueError as exc:
            raise UserError(str(exc)) from exc
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


def settings_reference_markdown() -> str:
    """docs/configuration.md's settings table (a test keeps it equal to this)."""
    lines = ["| setting | variable | default | |", "| --- | --- | --- | --- |"]
    lines += [f"| `{key}` | `{env}` | `{default}` | {doc} |" for key, env, default, doc in reference_rows()]
    return "\n".join(lines)


def local_cluster(settings: Settings, args: argparse.Namespace) -> int:
    """`cluster up`: Postgres, Redis and workers on 127.0.0.1 (cluster.py); `cluster down` stops them."""
    from .cluster import LocalCluster

    cluster = LocalCluster(Path(args.folder) if args.folder else settings.home / "cluster")
    if args.action == "down":
        cluster.down()
        print(f"stopped the workers, Redis and Postgres of {cluster.folder}")
        return 0
    cluster.up(workers=args.workers)
    print(f"Postgres on 127.0.0.1:{cluster.pg_port}, Redis on 127.0.0.1:{cluster.redis_port}, {args.workers} "
          f"worker(s) (logs in {cluster.folder}). Use them with:\n  . {cluster.folder / 'cluster.env'} && "
          "autointerp run\nStop them with: autointerp cluster down")
    return 0


def ui_environment(settings: Settings, sources: dict[str, str]) -> dict[str, str]:
    """Variables for the UI's processes: unless the settings name `llm.share_local`, an in-process judge is
    shared (the daemon's runs execute every step in its own process, so each would load the judge again)."""
    if settings.llm.is_local and "llm.share_local" not in sources:
        return {ENV_PREFIX + "LLM_SHARE_LOCAL": "true"}
    return {}


def start_ui(settings: Settings, port: int, environment: dict[str, str]) -> int:
    """`dagster dev` (webserver, daemon, sensors) on the project's instance, after releasing dead runs;
    `environment` reaches every process it starts (ui_environment)."""
    from dagster import DagsterInstance

    from .liveness import release_dead_runs

    with DagsterInstance.get() as instance:
        set_pool_limits(instance, settings)
        release_dead_runs(instance)
    os.environ.update(environment)
    # dagster dev handles SIGTERM as SIGINT. Where SIGINT is ignored (`nohup ... &`, a background job of a script),
    # an exec'd Python keeps ignoring it, so dagster dev would ignore SIGTERM too and could not be stopped.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port),
                            "-m", "autointerp_dagster.definitions"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
