"""Where steps execute: on this machine, in the run's process (in_process, the default) or a process a step
(multiprocess), or on Dagster's Celery executor, whose steps run on long-lived workers (`autointerp worker`) on
any machine sharing the instance.

Steps go to the queue of their pool: steps that load the subject model to `model` (a GPU machine's workers),
the judge's steps to `llm`, the rest to `default`. A worker's process outlives its steps, so the judge, MiniLM
and the subject model (cached per process by the resources) load once per worker process, not once per step.
A worker killed mid-step loses nothing: a step is acknowledged only once it ends (`task_acks_late`), so the
broker delivers it again to another worker, and LLM answers already received come from the response cache.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from dagster import in_process_executor, multiprocess_executor
from dagster_celery import celery_executor

from .core.config import Settings
from .instance import DEFAULT_QUEUE, QUEUES

QUEUE_TAG = "dagster-celery/queue"


def queue_tags(pool: str) -> dict[str, str]:
    """The op tags that send a pool's steps to its queue (read only by the Celery executor)."""
    return {QUEUE_TAG: pool}


def celery_settings(settings: Settings) -> dict:
    """The Celery executor's configuration; the workers' app is made from the same, so both sides agree."""
    timeout = settings.executor.visibility_timeout_s
    transport = {  # Redis: unacknowledged steps of a lost worker go back to the queue after the timeout
        "visibility_timeout": timeout, "unacked_restore_interval": max(1, min(10, timeout // 4)),
        "unacked_restore_throttle": 1, "max_retries": 3, "interval_start": 0, "interval_step": 0.2,
        "interval_max": 0.5}
    return {
        "broker": settings.executor.broker,
        "backend": settings.executor.backend,
        "config_source": {
            "task_acks_late": True,  # acknowledged when the step ends, so a killed worker's step is redelivered
            "task_reject_on_worker_lost": True,  # a killed worker child: redelivered at once
            "worker_prefetch_multiplier": 1,  # a worker holds no step it is not running
            "task_default_queue": DEFAULT_QUEUE,
            "broker_transport_options": transport,
            "result_backend_transport_options": {"visibility_timeout": timeout},
            "broker_connection_retry_on_startup": True,
        },
    }


def executor_for(settings: Settings):
    """The executor every job runs with (the UI's runs and the sensor's included)."""
    if settings.executor.kind == "celery":
        return celery_executor.configured(celery_settings(settings), name="celery")
    return in_process_executor if settings.executor.kind == "in_process" else multiprocess_executor


def worker_argv(settings: Settings, queues: list[str], name: str | None, concurrency: int) -> list[str]:
    """The `celery worker` command line of one worker listening on `queues`."""
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        from .core.errors import UserError

        raise UserError(f"no queue {unknown}; the queues are {', '.join(QUEUES)}")
    celery = Path(sys.executable).with_name("celery")
    return [str(celery), "-A", "autointerp_dagster.worker_app", "worker", "--loglevel", "INFO",
            "--queues", ",".join(queues), "--concurrency", str(concurrency), "--prefetch-multiplier", "1",
            "--hostname", f"{name or 'autointerp-' + '-'.join(queues)}@{socket.gethostname()}",
            "--without-gossip", "--without-mingle"]


def start_worker(settings: Settings, queues: list[str], name: str | None, concurrency: int) -> int:
    """Replaces this process with a Celery worker (what `autointerp worker` runs)."""
    if settings.instance.storage != "postgres":
        print("autointerp worker: the instance's storage is sqlite, which only workers on this machine share; "
              "several machines need instance.storage: postgres (docs/deploy.md)", file=sys.stderr)
    argv = worker_argv(settings, queues, name, concurrency)
    os.execv(argv[0], argv)
    return 0
