"""Command line: `autointerp run` materialises the pipeline in Dagster; `autointerp ui` opens the Dagster UI.

Both use the Dagster instance under `$AUTOINTERP_HOME/dagster`, so what `run` materialises
is what the UI shows afterwards (runs, metadata, plots, lineage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .core.settings import Settings, load_settings

DAGSTER_YAML = """\
# Written by autointerp: model work shares one accelerator, so the `gpu` pool runs one step at a time.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def use_dagster_home(settings: Settings) -> Path:
    """Points DAGSTER_HOME at the project's instance folder (created with its dagster.yaml on first use)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_pipeline(settings: Settings, force: bool = False) -> int:
    """The main job: corpus, embedded SAEs, caches, latent statistics, examples, explanations, scores, summaries."""
    from dagster import DagsterInstance, materialize

    from .assets import activation_cache, corpus, embedded_saes, examples, explanations, latent_stats, sae_summary, scores
    from .core.coders import cache_fingerprint, registered_coders
    from .core.explainers import explainer_id
    from .core.latent_ranges import range_keys
    from .core.report import OFFLINE_JUDGE_NOTE, format_report, sae_report
    from .core.store import ResultsStore
    from .definitions import build_resources
    from .partitions import SAE_DIMENSION, sae_range_key
    from .sensors import partition_runs

    instance = DagsterInstance.get()
    resources = build_resources()
    started = time.monotonic()

    def step(title: str) -> None:
        print(f"\n== [{time.monotonic() - started:6.0f} s] {title}", flush=True)

    def check(result) -> None:
        if not result.success:
            raise SystemExit(f"run {result.run_id} failed; see the logs above or the Dagster UI")

    step("corpus and embedded SAEs")
    check(materialize([corpus, embedded_saes], instance=instance, resources=resources, run_config=QUIET_LOGS))

    coders = registered_coders(settings)
    if not coders:
        raise SystemExit(f"no sparse coders found: put some in {settings.watched_sae_dir} or list them under `saes:`")
    existing = instance.get_dynamic_partitions(SAE_DIMENSION)
    new = [key for key in coders if key not in existing]
    if new:
        instance.add_dynamic_partitions(SAE_DIMENSION, new)
    all_keys = list(instance.get_dynamic_partitions(SAE_DIMENSION))
    stale = [key for key, c in coders.items() if force or cache_fingerprint(settings, key) != c.fingerprint()]
    step(f"activation caches: {len(stale)} of {len(coders)} coder(s) to cache: {stale}")
    for request in partition_runs(stale, all_keys):
        check(materialize([activation_cache], instance=instance, resources=resources, tags=request.tags,
                          run_config=QUIET_LOGS))

    llm = resources["llm"]
    for asset in (latent_stats, examples, explanations, scores):
        step(f"{asset.key.to_user_string()} ({len(coders)} SAEs x {settings.latent_ranges} latent ranges)"
             + (f" with {llm.backend}:{llm.model}" if asset in (explanations, scores) else ""))
        for key in coders:
            for range_key in range_keys(settings.latent_ranges):
                check(materialize([asset], instance=instance, resources=resources,
                                  partition_key=sae_range_key(key, range_key), run_config=QUIET_LOGS))
    step("per-SAE summaries")
    for key in coders:
        check(materialize([sae_summary], instance=instance, resources=resources, partition_key=key,
                          run_config=QUIET_LOGS))

    print_cache_table(settings, list(coders))
    store = ResultsStore(settings.db_path)
    explainer = explainer_id(settings.explainer_config(llm.is_local))
    print(f"\nInterpretation (per-latent scores averaged over latents, 95% bootstrap intervals; judge {llm.model})")
    for key in coders:
        print(format_report(sae_report(store, key, explainer)))
    if llm.backend == "local":
        print("\n" + OFFLINE_JUDGE_NOTE)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Open the results in Dagster: autointerp ui "
          "(then http://127.0.0.1:3000), or query .autointerp/autointerp.duckdb.")
    return 0


def print_cache_table(settings: Settings, keys: list[str]) -> None:
    from .core.store import ResultsStore

    store = ResultsStore(settings.db_path)
    table = store.query(
        "SELECT c.sae, c.encoded_tokens, c.nnz, c.dead_fraction, c.tokens_per_s, c.bytes_on_disk, "
        "count(s.latent) AS latents_with_stats FROM activation_caches c "
        "LEFT JOIN latent_stats s ON s.sae = c.sae GROUP BY ALL ORDER BY c.sae"
    ).to_pylist()
    print("\nActivation caches")
    print(f"{'sae':44} {'tokens':>9} {'nonzeros':>11} {'dead':>6} {'tok/s':>7} {'MB':>6} {'stats':>6}")
    for row in table:
        if row["sae"] in keys:
            print(f"{row['sae']:44} {row['encoded_tokens']:>9} {row['nnz']:>11} {row['dead_fraction']:>6.1%} "
                  f"{row['tokens_per_s']:>7.0f} {row['bytes_on_disk'] / 1e6:>6.1f} {row['latents_with_stats']:>6}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autointerp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialise the pipeline on the configured (default: embedded) inputs")
    run.add_argument("--force", action="store_true", help="re-cache coders even when their cache is current")
    ui = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    settings = load_settings()
    use_dagster_home(settings)
    if args.command == "run":
        return run_pipeline(settings, force=args.force)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(args.port),
                            "-m", "autointerp_dagster.definitions"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
