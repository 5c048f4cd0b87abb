"""The project's Dagster instance under `$AUTOINTERP_HOME/dagster`, shared by `autointerp run` and the UI.

Its dagster.yaml bounds model work by configuration: steps that load the subject model run in the pool
`model`, explanation and scoring steps (which may load an in-process judge) in the pool `llm`, each
limited per step across all runs; and at most `concurrency.runs` runs are in progress at once. So a
backfill or the sensor's automation over many partitions queues instead of loading many models.

With `instance.storage: postgres` the runs, events and pool slots live in Postgres, so Celery workers on
other machines (workers.py) and every process that shares the instance see one set of runs and pool limits.

It also keeps the daemon path moving after a crash (settings `instance`, see liveness.py): run monitoring
asks the launcher whether each run's process is alive and fails a dead run, frees the pool slots of ended
runs, and run retries re-execute a failed run from its failed step. Messages of the project's own loggers
(e.g. a writer waiting for the results file) go into the runs' logs.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .core.config import Settings

MODEL_POOL = "model"
LLM_POOL = "llm"
DEFAULT_QUEUE = "default"
QUEUES = (MODEL_POOL, LLM_POOL, DEFAULT_QUEUE)  # the Celery executor's queues: a pool's steps go to its namesake


def instance_yaml(settings: Settings) -> str:
    kept = settings.instance
    config = {
        "telemetry": {"enabled": False},
        "concurrency": {
            "pools": {"default_limit": 1, "granularity": "op"},
            "runs": {"max_concurrent_runs": settings.concurrency.runs},
        },
        "run_launcher": {"module": "autointerp_dagster.liveness", "class": "LocalRunLauncher"},
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": kept.monitor_interval_s,
            "free_slots_after_run_end_seconds": kept.free_slots_after_s,
            "max_resume_run_attempts": 0,  # the default launcher cannot resume a run worker: fail, then retry
        },
        "run_retries": {"enabled": kept.run_retries > 0, "max_retries": kept.run_retries},
        "python_logs": {"managed_python_loggers": ["autointerp_dagster"], "python_log_level": "INFO"},
    }
    if kept.storage == "postgres":  # runs, events, schedules and pools in Postgres; its URL stays in the environment
        config["storage"] = {"postgres": {"postgres_url": {"env": kept.postgres_url_env}}}
    header = "# Written by autointerp from the settings' `concurrency` and `instance` sections; edits are replaced.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def use_dagster_home(settings: Settings) -> Path:
    """Points DAGSTER_HOME at the project's instance folder and writes its dagster.yaml from the settings."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    wanted = instance_yaml(settings)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != wanted:
        target.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def set_pool_limits(instance, settings: Settings) -> dict[str, int]:
    """Per-pool step limits, stored in the instance (dagster.yaml only holds a default for every pool)."""
    limits = {MODEL_POOL: settings.concurrency.model_steps, LLM_POOL: settings.concurrency.llm_steps}
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return limits
