"""Dead runs on a real instance: a process that held a pool slot is SIGKILLed; the run is found dead (by
`release_dead_runs` and by the launcher's health check for run monitoring), marked failed, and its slot freed.
A live run is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.launcher import WorkerStatus

from autointerp_dagster.core.config import load_settings
from autointerp_dagster.instance import use_dagster_home
from autointerp_dagster.liveness import LocalRunLauncher, release_dead_runs

from .conftest import start_ui

# A job whose one step holds the `llm` pool until killed, executed in process like `autointerp run` does.
HOLDER = """
import sys, time
from dagster import DagsterInstance, job, op

@op(pool="llm")
def hold():
    print("holding", flush=True)
    time.sleep(600)

@job
def holder():
    hold()

with DagsterInstance.get() as instance:
    instance.event_log_storage.set_concurrency_slots("llm", 1)
    holder.execute_in_process(instance=instance, run_id=sys.argv[1])
"""


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    use_dagster_home(load_settings(None, environ={"AUTOINTERP_HOME": str(tmp_path / "home")}))
    with DagsterInstance.get() as instance:
        yield instance
    os.environ.pop("DAGSTER_HOME", None)


def start_holder(instance: DagsterInstance, run_id: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, run_id], stdout=subprocess.PIPE, text=True,
                              env={**os.environ})
    assert holder.stdout.readline().strip() == "holding"
    deadline = time.monotonic() + 30
    while not instance.event_log_storage.get_concurrency_info("llm").claimed_slots:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return holder


def test_a_killed_runs_slot_is_freed_and_a_live_run_is_left_alone(instance):
    live_id, next_id = str(uuid.uuid4()), str(uuid.uuid4())
    launcher = LocalRunLauncher()
    launcher.register_instance(instance)
    live = start_holder(instance, live_id)
    try:
        assert release_dead_runs(instance, say=lambda _: None) == []
        assert launcher.check_run_worker_health(instance.get_run_by_id(live_id)).status == WorkerStatus.RUNNING
        live.send_signal(signal.SIGKILL)
        live.wait()
        dead = instance.get_run_by_id(live_id)
        assert dead.status == DagsterRunStatus.STARTED  # nothing told the instance
        health = launcher.check_run_worker_health(dead)
        assert health.status == WorkerStatus.FAILED and f"(pid {live.pid})" in health.msg
        said = []
        assert release_dead_runs(instance, say=said.append) == [live_id]
        assert instance.get_run_by_id(live_id).status == DagsterRunStatus.FAILURE
        assert "was left STARTED by a dead process" in said[0]
        assert instance.event_log_storage.get_concurrency_info("llm").claimed_slots == []
        # The next holder gets the slot at once.
        start_holder(instance, next_id).kill()
    finally:
        live.kill()


def test_the_ui_stops_on_sigterm_even_when_started_with_sigint_ignored(tmp_path):
    """`nohup autointerp ui &` and background jobs of scripts start it with SIGINT ignored; dagster dev handles
    SIGTERM as SIGINT, so without care it would ignore SIGTERM too and could not be stopped."""
    env = {**os.environ, "AUTOINTERP_HOME": str(tmp_path / "home"), "AUTOINTERP_LLM_BACKEND": "openai"}
    ui, _ = start_ui(env, timeout_s=300, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)  # raises if SIGTERM was ignored
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
