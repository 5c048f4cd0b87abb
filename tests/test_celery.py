"""The Celery executor end to end, as a user would deploy it on one machine (`autointerp cluster up`): Postgres
holds the Dagster instance, Redis is the broker, two `autointerp worker` processes run the steps, and results go
to the parquet store that many writers share. Two coders x 8 latent ranges are explained and scored against the
scripted judge on 127.0.0.1; one worker is SIGKILLed (with its child) in the middle of a step. Its step must be
delivered again to the other worker, and the run must end with every partition materialised, no row twice and
no LLM answer paid twice.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from autointerp_dagster.cluster import LocalCluster, _pg_binary
from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.errors import UserError
from autointerp_dagster.core.latent_ranges import range_keys
from autointerp_dagster.core.store import open_store

from .test_chaos import KEYS, SAES, Run, judge_server, make_project

RANGES = 8


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _services_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (make test installs it)"
    try:
        _pg_binary("initdb")
    except UserError as exc:
        return str(exc)
    return None


def running_tasks(log: Path) -> set[str]:
    """Celery task ids a worker received and has not finished, from its log."""
    text = log.read_text()
    received = set(re.findall(r"Task execute_plan\[([0-9a-f-]+)\] received", text))
    ended = set(re.findall(r"Task execute_plan\[([0-9a-f-]+)\] (?:succeeded|raised|failed)", text))
    return received - ended


@pytest.mark.skipif(_services_missing() is not None, reason=str(_services_missing()))
def test_celery_worker_killed_mid_step_loses_no_work(tmp_path, tiny_model_dir):
    env = make_project(tmp_path, tiny_model_dir)
    env["AUTOINTERP_CODERS_LATENT_RANGES"] = str(RANGES)
    server = judge_server(latency_s=0.05)
    env["AUTOINTERP_LLM_BASE_URL"] = server.base_url
    cluster = LocalCluster(tmp_path / "cluster", pg_port=_free_port(), redis_port=_free_port())
    try:
        check_celery_run(env, server, cluster)
    finally:
        cluster.down(remove=True)  # Postgres' folder is under /tmp when running as root


def check_celery_run(env: dict[str, str], server, cluster: LocalCluster) -> None:
    try:
        # Steps of this test last seconds: a lost worker's step goes back to the queue after 20 s.
        env = cluster.up(workers=2, base_env=env, visibility_timeout_s=20)
        run = Run(env, server)
        try:
            logs = {n: cluster.folder / f"worker-{n}.log" for n in (0, 1)}
            run.wait_for(lambda: "score_job" in run.output and any(running_tasks(log) for log in logs.values()),
                         timeout=600, every=0.05)
            victim = next(n for n, log in logs.items() if running_tasks(log))
            lost = running_tasks(logs[victim])
            os.killpg(cluster.worker_pids()[victim], signal.SIGKILL)  # the worker and its child: a lost machine
            assert run.finish(timeout=900) == 0, run.output[-4000:]
        finally:
            if run.proc.poll() is None:  # a failed check leaves no coordinator behind
                run.proc.kill()
                run.proc.wait()
        survivor = logs[1 - victim].read_text()
        assert any(f"execute_plan[{task}] succeeded" in survivor for task in lost), \
            f"the killed worker's step {lost} was not run again by the other worker"
    finally:
        cluster.down()
        server.stop()

    settings = load_settings(env["AUTOINTERP_CONFIG"], environ=env)
    assert settings.executor.kind == "celery" and settings.store.backend == "parquet"
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    cluster = LocalCluster(cluster.folder, pg_port=cluster.pg_port, redis_port=cluster.redis_port)
    try:
        cluster.start_postgres()  # the instance's runs and materialisations live in Postgres
        os.environ["DAGSTER_POSTGRES_URL"] = env["DAGSTER_POSTGRES_URL"]
        with DagsterInstance.get() as instance:
            assert "postgres" in type(instance.run_storage).__module__
            wanted = {f"{latents}|{sae}" for sae in SAES for latents in range_keys(RANGES)}
            for asset in ("examples", "explanations", "scores", "subject_model_scores", "intruder_scores"):
                done = instance.get_materialized_partitions(AssetKey(asset))
                assert wanted <= done, f"{asset}: {len(wanted - done)} partitions not materialised"
    finally:
        os.environ.pop("DAGSTER_HOME")
        os.environ.pop("DAGSTER_POSTGRES_URL", None)
        cluster.down()

    store = open_store(settings)
    for table, key in KEYS.items():
        rows = store.query(f"SELECT * FROM {table}").to_pylist()
        assert rows, f"no {table}"
        keys = [tuple(r[c] for c in key) for r in rows]
        assert len(set(keys)) == len(keys), f"{table}: {len(keys) - len(set(keys))} duplicated rows"
    for sae in SAES:  # every latent with examples was explained and scored, in all 8 ranges
        sampled = {r["latent"] for r in store.query("SELECT DISTINCT latent FROM examples WHERE sae = ?", [sae])
                   .to_pylist()}
        explained = {r["latent"] for r in store.query("SELECT DISTINCT latent FROM explanations WHERE sae = ?",
                                                      [sae]).to_pylist()}
        assert sampled and sampled == explained
    paid = store.query("SELECT prompt_hash, count(*) AS n FROM llm_calls WHERE status = 'ok' GROUP BY ALL")
    assert max(r["n"] for r in paid.to_pylist()) == 1, "an LLM answer was received (and paid for) twice"

