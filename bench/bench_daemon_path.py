"""The path the project exists for: with the Dagster UI running, a new SAE appears in the watched folder.

Starts `autointerp ui` (dagster dev: webserver, daemon, sensors) on the project's home, copies one of the
embedded SAEs under a new name into the SAE folder, and waits until the discovery sensor has cached it and
the automation has materialised every downstream partition (statistics, examples, explanations, scores,
summary). Prints the wall time, the peak memory in use on the machine and of the UI's process tree, and
the runs that failed. Needs `make run` first (the embedded models and SAEs).

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

COPY_NAME = "daemon-copy"


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-min", type=float, default=90)
    parser.add_argument("--port", type=int, default=3077)
    args = parser.parse_args()
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
                          if r.run_id not in before]
                if summary and n_scored == ranges or failed:
                    break
                time.sleep(5)
            seconds = time.monotonic() - dropped
            runs = [r for r in instance.get_runs() if r.run_id not in before]
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
        shutil.rmtree(target.parent, ignore_errors=True)
    print(f"runs launched: {len(runs)}; failed: {[r.job_name for r in failed]}")
    print(f"daemon_path_complete={int(bool(summary) and n_scored == ranges)}")
    print(f"daemon_path_minutes={seconds / 60:.1f}")
    print(f"daemon_path_peak_machine_gb={peak_used / 2**30:.1f}")
    print(f"daemon_path_peak_ui_tree_gb={peak_tree / 2**30:.1f}")
    print(f"daemon_path_failed_runs={len(failed)}")


if __name__ == "__main__":
    main()
