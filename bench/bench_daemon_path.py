"""The path the project exists for: with the Dagster UI running, a new SAE appears in the watched folder.

Side by side in one run, with the response cache off (both paths pay for every LLM answer):
1. `autointerp run --sae <copy>` on one copy of an embedded SAE: the time `make run` spends on that SAE's stages;
2. `autointerp ui` (dagster dev: webserver, daemon, sensors) while a second copy is dropped into the SAE
   folder, until the discovery sensor has cached it and the automation has materialised every downstream
   partition (statistics, examples, explanations, scores, summary).
Prints both times and their ratio (`daemon_vs_run_ratio=`), the judge loads on the daemon path
(`judge_loads=`: judge hosts started, each loading the in-process judge once, core/llm/judge_host.py), the
peak memory in use on the machine and of the UI's process tree, and the runs that failed. Needs `make run`
first (the embedded models and SAEs).

    .venv/bin/python bench/bench_daemon_path.py [--timeout-min 90] [--port 3077]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.llm.host_protocol import HOSTS_FOLDER, LISTENING  # noqa: E402

COPIES = ("daemon-copy", "run-copy")  # the daemon path's copy, `autointerp run`'s
# New names each time: the automation would otherwise pick up an earlier bench's copy where it was stopped.
STAMP = time.strftime("%Y%m%d-%H%M%S")
COPY_NAME, RUN_COPY_NAME = (f"{name}-{STAMP}" for name in COPIES)
STAGES_WAITED = ("cache", "explain", "score", "summary")  # what the daemon path is timed to (no similarity)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def judge_host_starts(settings) -> int:
    """Judge hosts started so far (each prints one line when it listens, then loads the judge on first use)."""
    return sum(log.read_text().count(LISTENING) for log in (settings.models_dir / HOSTS_FOLDER).glob("*.log"))


def is_copy(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(COPIES)


def about(run, key_test) -> bool:
    """Whether a run works on a partition whose coder passes `key_test` (its partition or partition-range tags)."""
    return any(key_test(value.split("|")[-1]) for name, value in run.tags.items() if "partition" in name)


def forget_copies(settings) -> None:
    """Removes the partitions and activation caches of every bench copy (this run's and earlier ones') and
    cancels their unfinished runs: their folders are gone, the UI's automation and retry daemon must not spend
    the measured time on them (a stopped bench leaves queued runs, and started ones that run monitoring would
    fail and the retry daemon retry), and each copy is cached anew on both paths. Runs are not deleted: that
    deletes their events, and SQLite would then reuse event ids the automation's cursor has already passed."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    from autointerp_dagster.core.cache import cache_folder
    from autointerp_dagster.partitions import SAE_DIMENSION

    with DagsterInstance.get() as instance:
        for run in instance.get_runs(RunsFilter(statuses=NOT_FINISHED_STATUSES)):
            if about(run, is_copy):
                instance.report_run_canceled(run, message="bench_daemon_path: its copy is gone")
        for key in instance.get_dynamic_partitions(SAE_DIMENSION):
            if is_copy(key):
                instance.delete_dynamic_partition(SAE_DIMENSION, key)
                shutil.rmtree(cache_folder(settings.cache_dir, key), ignore_errors=True)


def timed_run(autointerp: Path, source: Path, target: Path, key: str) -> float:
    """Minutes `autointerp run --sae key` takes on a fresh copy of the SAE, from caching to its summary."""
    shutil.rmtree(target.parent, ignore_errors=True)
    shutil.copytree(source, target)
    started = time.monotonic()
    try:
        subprocess.run([str(autointerp), "run", "--sae", key, *(f"--stage={stage}" for stage in STAGES_WAITED)],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)
    return (time.monotonic() - started) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-min", type=float, default=90)
    parser.add_argument("--port", type=int, default=3077)
    args = parser.parse_args()
    os.environ["AUTOINTERP_LLM_USE_CACHE"] = "false"  # both paths pay for every answer (the copies ask the same)
    settings = load_settings()
    source = settings.watched_sae_dir / "embedded-topk" / "layers.7"
    if not source.is_dir():
        raise SystemExit(f"{source} is missing: run `make run` first")
    target = settings.watched_sae_dir / COPY_NAME / "layers.7"
    key = f"{settings.alias}/layers.7/{COPY_NAME}"
    shutil.rmtree(target.parent, ignore_errors=True)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

    autointerp = Path(sys.executable).with_name("autointerp")
    forget_copies(settings)
    run_minutes = timed_run(autointerp, source, settings.watched_sae_dir / RUN_COPY_NAME / "layers.7",
                            f"{settings.alias}/layers.7/{RUN_COPY_NAME}")
    print(f"autointerp run --sae (a copy): {run_minutes:.1f} min", flush=True)
    forget_copies(settings)
    hosts_before = judge_host_starts(settings)
    ui = subprocess.Popen([str(autointerp), "ui", "--port", str(args.port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    peak_used, peak_tree, ranges = 0, 0, settings.coders.latent_ranges
    try:
        time.sleep(20)  # the daemon and the code server start
        with DagsterInstance.get() as instance:
            before = {r.run_id for r in instance.get_runs()}
            shutil.copytree(source, target)
            dropped = time.monotonic()
            print(f"copied {source} to {target}; waiting for {key}", flush=True)
            while time.monotonic() - dropped < args.timeout_min * 60:
                peak_used = max(peak_used, psutil.virtual_memory().total - psutil.virtual_memory().available)
                peak_tree = max(peak_tree, tree_rss(psutil.Process(ui.pid)))
                summary = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey("sae_summary"), asset_partitions=[key]), limit=1).records
                scored = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey("scores")),
                                                         limit=1000).records
                n_scored = len({r.partition_key for r in scored if key in (r.partition_key or "")})
                failed = [r for r in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
                          if r.run_id not in before and about(r, lambda k: k == key)]
                if summary and n_scored == ranges or failed:
                    break
                time.sleep(5)
            seconds = time.monotonic() - dropped
            runs = [r for r in instance.get_runs() if r.run_id not in before]
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
        shutil.rmtree(target.parent, ignore_errors=True)
        forget_copies(settings)
    print(f"runs launched: {len(runs)}; failed: {[r.job_name for r in failed]}")
    print(f"daemon_path_complete={int(bool(summary) and n_scored == ranges)}")
    print(f"daemon_path_minutes={seconds / 60:.1f}")
    print(f"daemon_path_peak_machine_gb={peak_used / 2**30:.1f}")
    print(f"daemon_path_peak_ui_tree_gb={peak_tree / 2**30:.1f}")
    print(f"daemon_path_failed_runs={len(failed)}")
    print(f"run_minutes={run_minutes:.1f}")
    print(f"daemon_vs_run_ratio={seconds / 60 / run_minutes:.2f}")
    print(f"judge_loads={judge_host_starts(settings) - hosts_before}")


if __name__ == "__main__":
    main()
