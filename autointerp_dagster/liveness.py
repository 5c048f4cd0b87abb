"""Runs whose process is gone: found, marked failed and made to give back their pool slots.

A run killed with SIGKILL (the OOM killer, a closed container, a power cut) never reports its end, so the
instance keeps it STARTED and keeps the pool slot its step held; every later step of that pool waits for
it forever. The process executing a run records its pid in the run's first engine event (Dagster does this
for in-process runs and for run workers alike), so on this machine a run is dead when that process is.

- `release_dead_runs` marks such runs failed and frees every slot held by a finished run; `autointerp run`
  and `autointerp ui` call it before they start anything.
- `LocalRunLauncher` is Dagster's default launcher with a health check, so the daemon's run monitoring
  (enabled in the instance's dagster.yaml) notices a dead run worker while the UI runs, fails the run,
  and the run-retry daemon re-executes it from the failed step.
- `PoolWatch` accompanies a run that `autointerp run` executes in its own process: while a step waits
  for a pool it says (at INFO, in the console and the run's log) which run holds the slot and since when,
  frees the slots of a holder that died meanwhile, and ends the process on SIGINT or SIGTERM, which
  Dagster's in-process executor only acts on inside a step.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psutil
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.launcher import (
    CheckRunHealthResult,
    DefaultRunLauncher,
    WorkerStatus,
)
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._utils.interrupts import check_captured_interrupt
from dagster_shared import seven

HOST_TAG = "autointerp/host"  # the machine executing a run that `autointerp run` executes in process
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", socket.gethostname()}
LIVE_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class RunProcess:
    """The process executing a run, as the run recorded it."""

    pid: int
    recorded_at: float  # when the run recorded it (seconds since the epoch)


def run_process(instance: DagsterInstance, run_id: str) -> RunProcess | None:
    """The pid from the run's first engine event that carries one, or None when it recorded none yet."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        data = record.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return RunProcess(int(pid.value), record.event_log_entry.timestamp)
    return None


def runs_here(run: DagsterRun) -> bool:
    """Whether the run executes on this machine: run in process by `autointerp run` here, or launched
    through a local code server (how `autointerp ui` and the daemon launch runs)."""
    if HOST_TAG in run.tags:
        return run.tags[HOST_TAG] in LOCAL_HOSTS
    grpc = run.tags.get(GRPC_INFO_TAG)
    return grpc is None or seven.json.loads(grpc).get("host", "localhost") in LOCAL_HOSTS


def process_gone(process: RunProcess) -> bool:
    """True when the pid is free, a zombie, or taken by a process started after the run recorded it."""
    try:
        found = psutil.Process(process.pid)
        return found.status() == psutil.STATUS_ZOMBIE or found.create_time() > process.recorded_at + 1.0
    except psutil.NoSuchProcess:
        return True


def dead_reason(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """Why `run` is dead (its process is gone), or None while it may be alive or runs elsewhere."""
    if not runs_here(run):
        return None
    process = run_process(instance, run.run_id)
    if process is None or not process_gone(process):
        return None
    return (f"its process (pid {process.pid}) on this machine ended without finishing the run: killed "
            f"(SIGKILL, the out-of-memory killer, a closed terminal) or crashed")


def release_dead_runs(instance: DagsterInstance, say: Callable[[str], None] = print) -> list[str]:
    """Marks this machine's runs whose process is gone as failed (canceled while canceling) and frees the
    pool slots of every finished run; returns the ids of the runs it marked."""
    marked = []
    for record in instance.get_run_records(RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        reason = dead_reason(instance, run)
        if reason is None:
            continue
        message = f"marked {'canceled' if run.status == DagsterRunStatus.CANCELING else 'failed'} by autointerp: "
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message + reason)
        else:
            instance.report_run_failed(run, message + reason)
        marked.append(run.run_id)
        say(f"run {run.run_id[:8]} of {run.job_name} was left {run.status.value} by a dead process; {message}{reason}")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            holder = instance.get_run_by_id(run_id)
            if holder is None or holder.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return marked


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher (a run worker per run, on the code server's machine) with a health check
    for the daemon's run monitoring: a run worker that vanished is FAILED, anything else RUNNING."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        reason = dead_reason(self._instance, run)
        if reason is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "process alive, or not on this machine")
        return CheckRunHealthResult(WorkerStatus.FAILED, reason)


class PoolWatch:
    """Watches one run executed in this process while it waits for pool slots (see the module's docstring).

    Use as a context manager around `execute_in_process(run_id=...)`.
    """

    def __init__(self, instance: DagsterInstance, run_id: str, pools: Sequence[str], every_s: float = 2.0,
                 say_every_s: float = 60.0, say: Callable[[str], None] = print):
        self.instance, self.run_id, self.pools = instance, run_id, list(pools)
        self.every_s, self.say_every_s, self.say = every_s, say_every_s, say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pool-watch", daemon=True)
        self._said: dict[str, float] = {}

    def __enter__(self) -> PoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                waiting = self._waiting()
                if waiting and check_captured_interrupt():
                    self._end(waiting)
                for pool, step in waiting:
                    self._explain(pool, step)
            except Exception as exc:  # a watcher must never take the run down with it
                self.say(f"(pool watch: {type(exc).__name__}: {exc})")

    def _waiting(self) -> list[tuple[str, str]]:
        """(pool, step key) of this run's steps that wait for a slot."""
        found = []
        for pool in self.pools:
            info = self.instance.event_log_storage.get_concurrency_info(pool)
            found += [(pool, p.step_key) for p in info.pending_steps
                      if p.run_id == self.run_id and p.assigned_timestamp is None]
        return found

    def _explain(self, pool: str, step: str) -> None:
        key = f"{pool}/{step}"
        if time.monotonic() - self._said.get(key, -1e9) < self.say_every_s:
            return
        info = self.instance.event_log_storage.get_concurrency_info(pool)
        holders = [self._holder(slot.run_id, slot.step_key) for slot in info.claimed_slots]
        if any(h is None for h in holders):  # a holder died while we waited: free its slots and go on
            release_dead_runs(self.instance, self.say)
            return
        self._said[key] = time.monotonic()
        message = (f"step {step} waits for pool '{pool}' (limit {info.slot_count}): its slot is held by "
                   + "; ".join(holders or ["no run (slots being reassigned)"])
                   + ". It starts when that step ends; Ctrl-C stops waiting.")
        self.say(f"{datetime.now():%H:%M:%S} {message}")
        self.instance.report_engine_event(message, run_id=self.run_id, job_name=self._job_name(), step_key=step)

    def _holder(self, run_id: str, step_key: str) -> str | None:
        """'run <id> (<job>, step <key>, <status>) since <time>', or None when that run is dead."""
        run = self.instance.get_run_by_id(run_id)
        if run is None or run.is_finished or dead_reason(self.instance, run):
            return None
        starts = [r.event_log_entry.timestamp for r in self.instance.get_records_for_run(
            run_id, of_type=DagsterEventType.STEP_START).records if r.event_log_entry.step_key == step_key]
        since = starts[-1] if starts else (self.instance.get_run_record_by_id(run_id).start_time or time.time())
        minutes = (time.time() - since) / 60
        return (f"run {run_id[:8]} ({run.job_name}, step {step_key}, {run.status.value}) since "
                f"{datetime.fromtimestamp(since):%H:%M:%S} ({minutes:.0f} min ago)")

    def _job_name(self) -> str:
        run = self.instance.get_run_by_id(self.run_id)
        return run.job_name if run else "unknown"

    def _end(self, waiting: list[tuple[str, str]]) -> None:
        """SIGINT or SIGTERM while waiting: the run ends as it would inside a step (canceled, slots freed)."""
        run = self.instance.get_run_by_id(self.run_id)
        pools = ", ".join(sorted({pool for pool, _ in waiting}))
        message = f"interrupted while step(s) waited for pool(s) {pools}"
        if run is not None and not run.is_finished:
            self.instance.report_run_canceled(run, message)
        self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
        self.say(f"autointerp: {message}; run {self.run_id[:8]} canceled")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
