"""Chaos: `autointerp run` killed with SIGKILL at each stage, a damaged cache, a full disk, a locked results
file, a signal while waiting for a pool. After each, a plain re-run must complete and leave exactly the rows
an uninterrupted run leaves: none duplicated, none lost, no LLM answer received twice, no stale cache used.

Everything is real: the tiny Gemma model, sparsify SAEs, the scripted judge on an HTTP server on 127.0.0.1,
`autointerp run` as a subprocess (SIGKILL ends it as the OOM killer would), DuckDB and the Dagster instance.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from autointerp_dagster.core.cache import ActivationCache, cache_folder, read_manifest
from autointerp_dagster.core.cache.plan import plan_caches
from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.store import ResultsStore
from autointerp_dagster.liveness import run_process

from .conftest import scripted_judge, start_ui, write_sparsify_sae
from .openai_stub_server import Fault, StubLLMServer

pytestmark = pytest.mark.chaos

SAES = ["tiny/layers.0/run-a", "tiny/layers.1/run-b"]
RANGES = 2
# Each results table's key: a re-run replaces the rows of a key, so a second row of one is a bug.
KEYS = {
    "activation_caches": ("sae",),
    "latent_stats": ("sae", "latent"),
    "latent_sampling": ("sae", "latent"),
    "examples": ("sae", "latent", "set", "idx"),
    "latent_digest": ("sae", "latent", "kind", "rank"),
    "explanations": ("sae", "latent", "explainer", "backend", "model"),
    "scores": ("sae", "latent", "scorer", "explanation_id", "judge", "scorer_config", "control"),
    "judgments": ("sae", "latent", "scorer", "explanation_id", "judge", "scorer_config", "control", "example_set",
                  "example_idx", "label"),  # fuzzing judges an example twice (right and wrong marks), by label
    "steering": ("sae", "latent", "control", "scorer_config"),
    "latent_matches": ("sae_a", "latent_a", "sae_b", "method"),
    "sae_similarity": ("sae_a", "sae_b", "method", "control"),
}
# What a kill must not change: the explanations and scores themselves.
VALUES = {"explanations": ("status", "explanation"), "scores": ("status", "auc", "balanced_accuracy")}


def make_project(root: Path, model_dir: Path) -> dict[str, str]:
    """A project home (two tiny sparsify SAEs, the KJV corpus cut small, 2 latent ranges) and its environment."""
    home = root / "home"
    write_sparsify_sae(home / "saes" / "run-a" / "layers.0", 64, 96, 4, seed=1)
    write_sparsify_sae(home / "saes" / "run-b" / "layers.1", 64, 80, 3, seed=3)
    config = {
        "model": {"name": str(model_dir), "alias": "tiny"}, "coders": {"embedded": None, "latent_ranges": RANGES},
        "corpus": {"source": "embedded:kjv", "ctx_len": 32, "token_budget": 32 * 160},
        "cache": {"batch_rows": 1},  # a forward pass a row: caching lasts long enough to be killed in
        "sampling": {"example_ctx_len": 8, "peak_index": 5, "min_activating": 4, "n_train": 6, "n_test": 6,
                     "n_quantiles": 3, "n_random_negatives": 6, "n_hard_negatives": 3, "hard_negative_queries": 2,
                     "negatives": "random+hard"},
        "scoring": {"batch_size": 3},
    }
    (root / "autointerp.yaml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOINTERP_") and k != "DAGSTER_HOME"}
    return {**env, "AUTOINTERP_HOME": str(home), "AUTOINTERP_CONFIG": str(root / "autointerp.yaml"),
            "AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_MODEL": "scripted-judge",
            "AUTOINTERP_LLM_TIMEOUT_S": "10", "PYTHONUNBUFFERED": "1"}


def judge_server(latency_s: float = 0.0) -> StubLLMServer:
    """The scripted judge, failing its first two requests (500, then 429) as the shared fixture does."""
    scripted_judge.failed_once = False
    server = StubLLMServer(reply=scripted_judge, latency_s=latency_s, models=("scripted-judge",)).start()
    server.enqueue(Fault.server_error(500), Fault.rate_limit(retry_after=0.05))
    return server


class Run:
    """`autointerp run` as a subprocess, its output collected line by line as it comes."""

    def __init__(self, env: dict[str, str], server: StubLLMServer):
        self.env = {**env, "AUTOINTERP_LLM_BASE_URL": server.base_url}
        autointerp = Path(sys.executable).with_name("autointerp")
        self.proc = subprocess.Popen([str(autointerp), "run"], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 240.0, every: float = 0.002) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended (status {self.proc.returncode}) first:\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:.0f} s in vain:\n{self.output[-3000:]}")
            time.sleep(every)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 400.0) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the run did not end within {timeout:.0f} s:\n{self.output[-4000:]}") from None
        self._reader.join(timeout=10)
        return self.proc.returncode


def complete_run(env: dict[str, str], server: StubLLMServer) -> str:
    run = Run(env, server)
    assert run.finish() == 0, run.output[-4000:]
    return run.output


def table_rows(env: dict[str, str], tables=tuple(KEYS)) -> dict[str, list[dict]]:
    store = ResultsStore(Path(env["AUTOINTERP_HOME"]) / "autointerp.duckdb")
    return {table: store.query(f"SELECT * FROM {table}").to_pylist() for table in tables}


def paid_answers(env: dict[str, str]) -> dict[str, int]:
    """Answers the client received from the server (not from its cache), by request hash."""
    store = ResultsStore(Path(env["AUTOINTERP_HOME"]) / "autointerp.duckdb")
    rows = store.query("SELECT prompt_hash, count(*) AS n FROM llm_calls WHERE status = 'ok' GROUP BY ALL")
    return {r["prompt_hash"]: r["n"] for r in rows.to_pylist()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir) -> dict[str, list[dict]]:
    """The rows of an uninterrupted run: what every run after a kill must end with."""
    env = make_project(tmp_path_factory.mktemp("reference"), tiny_model_dir)
    server = judge_server()
    try:
        complete_run(env, server)
    finally:
        server.stop()
    rows = table_rows(env)
    for table, key in KEYS.items():
        assert rows[table], f"the reference run left no {table}"
        assert len({tuple(r[c] for c in key) for r in rows[table]}) == len(rows[table]), f"{table}: key not unique"
    return rows


def assert_whole(env: dict[str, str], reference: dict[str, list[dict]], server: StubLLMServer,
                 concurrency: int = 8) -> None:
    """The re-run's results equal the reference's, no answer was received twice, caches are current and whole,
    and the instance holds no run in progress and no pool slot."""
    found = table_rows(env)
    for table, key in KEYS.items():
        keys = [tuple(r[c] for c in key) for r in found[table]]
        assert len(set(keys)) == len(keys), f"{table}: {len(keys) - len(set(keys))} duplicated rows"
        wanted = {tuple(r[c] for c in key) for r in reference[table]}
        assert set(keys) == wanted, f"{table}: {len(wanted - set(keys))} rows lost, {len(set(keys) - wanted)} extra"
    for table, columns in VALUES.items():
        values = sorted(tuple(str(r[c]) for c in KEYS[table] + columns) for r in found[table])
        assert values == sorted(tuple(str(r[c]) for c in KEYS[table] + columns) for r in reference[table])
    paid = paid_answers(env)
    assert max(paid.values()) == 1, "an LLM answer was received (and paid for) twice"
    assert len(server.answered) - sum(paid.values()) <= concurrency  # at most the requests in flight at the kill
    settings = load_settings(env["AUTOINTERP_CONFIG"], environ=env)
    plan = plan_caches(settings, SAES)
    assert plan.to_cache == [], f"stale or damaged caches after the re-run: {plan}"
    for key in SAES:
        assert ActivationCache(cache_folder(settings.cache_dir, key)).verify() == []
    assert not list(settings.cache_dir.glob("*.tmp")), "a killed cache build left its temporary folder"
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    try:
        with DagsterInstance.get() as instance:
            live = [r for r in instance.get_runs() if not r.is_finished]
            assert not live, f"runs left in progress: {[(r.job_name, r.status) for r in live]}"
            for pool in ("llm", "model"):
                assert instance.event_log_storage.get_concurrency_info(pool).claimed_slots == []
    finally:
        os.environ.pop("DAGSTER_HOME")


class Answered:
    """True once `job` has started and the judge has answered `n` more requests since (`n` 0: at the start)."""

    def __init__(self, job: str, n: int):
        self.job, self.n, self.base = job, n, None

    def __call__(self, run: Run, server: StubLLMServer, home: Path) -> bool:
        if self.base is None:
            if f"] {self.job}:" not in run.output:
                return False
            self.base = len(server.answered)
        return len(server.answered) >= self.base + self.n


KILL_POINTS = {  # stage -> a new condition on (run, judge server, home) after which the run is killed
    "cache": lambda: lambda run, server, home: any(home.glob("cache/*.tmp")),
    "examples": lambda: lambda run, server, home: "explain_job" in run.output and "1/4: " in run.output,
    "explanations": lambda: Answered("explain_job", 3),
    "scores": lambda: Answered("score_job", 3),
    "summary": lambda: Answered("summary_job", 0),
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_chaos_sigkill_at_each_stage_then_a_rerun_completes(stage, tmp_path, tiny_model_dir, reference):
    env = make_project(tmp_path, tiny_model_dir)
    home = Path(env["AUTOINTERP_HOME"])
    server = judge_server(latency_s=0.05)
    try:
        run = Run(env, server)
        condition = KILL_POINTS[stage]()
        run.wait_for(lambda: condition(run, server, home))
        if stage == "examples":
            time.sleep(1.0)  # inside the first explain_job run: statistics, then examples (MiniLM loading)
        run.signal(signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL
        rerun = Run(env, server)
        assert rerun.finish() == 0, rerun.output[-4000:]
        if stage in ("explanations", "scores"):  # the killed run held the llm pool's slot until it was released
            assert "was left STARTED by a dead process" in rerun.output
        assert_whole(env, reference, server)
    finally:
        server.stop()


def test_chaos_damaged_shard_is_found_and_cached_again(tmp_path, tiny_model_dir, reference):
    env = make_project(tmp_path, tiny_model_dir)
    server = judge_server()

    def damage(shard: Path) -> None:  # bytes overwritten in place: same size, other contents
        with shard.open("r+b") as f:
            f.seek(shard.stat().st_size // 3)
            f.write(bytes(64))

    try:
        complete_run(env, server)
        settings = load_settings(env["AUTOINTERP_CONFIG"], environ=env)
        folder = cache_folder(settings.cache_dir, SAES[1])
        damage(folder / "latents-01-of-02.parquet")
        # Found by the plan, before anything reads it: the run says so and caches that coder again.
        problem = "latents-01-of-02.parquet was rewritten since it was cached (its sha256 differs)"
        assert plan_caches(settings, SAES).corrupt == {SAES[1]: [problem]}
        output = complete_run(env, server)
        assert f"{SAES[1]}: its activation cache is damaged ({problem})" in output
        assert f"1 of 2 coder(s) to cache: ['{SAES[1]}']" in output
        assert ActivationCache(folder).verify() == []
        # Damaged after the plan looked: the reader refuses it and sets its manifest aside; the next run re-caches.
        damage(folder / "latents-00-of-02.parquet")
        with pytest.raises(OSError, match="is damaged"):
            ActivationCache(folder).records(0, 40)
        assert plan_caches(settings, SAES).missing == [SAES[1]]
        output = complete_run(env, server)
        assert f"1 of 2 coder(s) to cache: ['{SAES[1]}']" in output
        assert_whole(env, reference, server)
    finally:
        server.stop()


def test_chaos_full_disk_during_caching_keeps_the_previous_cache(tmp_path, tiny_model_dir, reference):
    env = make_project(tmp_path, tiny_model_dir)
    cache_dir = Path(env["AUTOINTERP_HOME"]) / "cache"
    cache_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(cache_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    server = judge_server()
    try:
        complete_run(env, server)
        settings = load_settings(env["AUTOINTERP_CONFIG"], environ=env)
        before = {key: read_manifest(cache_folder(settings.cache_dir, key)) for key in SAES}
        bigger = {**env, "AUTOINTERP_CORPUS_TOKEN_BUDGET": str(32 * 3000),  # caches of 1.3 MB each: more than is free
                  "AUTOINTERP_CACHE_BATCH_ROWS": "64"}
        run = Run(bigger, server)
        assert run.finish() == 2, run.output[-3000:]
        assert "no space left on the disk holding" in run.output and "Traceback" not in run.output
        for key in SAES:  # the previous caches are whole, readable and unchanged; no partial build is left
            assert read_manifest(cache_folder(settings.cache_dir, key)) == before[key]
            assert ActivationCache(cache_folder(settings.cache_dir, key)).verify() == []
        assert not list(cache_dir.glob("*.tmp"))
        complete_run(env, server)  # back on the old budget: the old caches are current again and used
        assert_whole(env, reference, server)
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(cache_dir)], check=False)


def test_chaos_locked_results_file_makes_writers_wait_with_a_message(tmp_path, tiny_model_dir, reference):
    env = make_project(tmp_path, tiny_model_dir)
    server = judge_server()
    db = Path(env["AUTOINTERP_HOME"]) / "autointerp.duckdb"
    try:
        complete_run(env, server)
        holder = subprocess.Popen(  # another process holds the file open for writing until told to let go
            [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(db)!r}); print('held', flush=True); "
                                   "sys.stdin.readline(); c.close()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        assert holder.stdout.readline().strip() == "held"
        run = Run(env, server)
        message = f"the results file {db} is held by another process (PID {holder.pid})"
        run.wait_for(lambda: message in run.output, timeout=120, every=0.1)
        time.sleep(2)  # the writer keeps waiting, then writes once the file is free
        holder.communicate("\n", timeout=30)
        assert run.finish() == 0, run.output[-3000:]
        assert_whole(env, reference, server)
    finally:
        server.stop()


def test_chaos_a_run_waiting_for_a_pool_says_who_holds_it_and_ends_on_sigterm(tmp_path, tiny_model_dir):
    # One llm slot (a server judge's default is 4): the second run's explanations must wait for the first's.
    env = {**make_project(tmp_path, tiny_model_dir), "AUTOINTERP_LLM_TIMEOUT_S": "60",
           "AUTOINTERP_CONCURRENCY_LLM_STEPS": "1"}
    server = judge_server()
    server.enqueue(Fault.hang(30))  # the first run's first explanation holds the llm pool for 30 s
    try:
        first = Run(env, server)
        first.wait_for(lambda: "explain_job" in first.output and len(server.requests) >= 3, every=0.05)
        second = Run(env, server)
        second.wait_for(lambda: "waits for pool 'llm'" in second.output, timeout=120, every=0.1)
        message = next(line for line in second.lines if "waits for pool 'llm'" in line)
        assert "held by run" in message and "explain_job, step explanations" in message and "since" in message
        second.signal(signal.SIGTERM)
        assert second.finish(timeout=30) == 130
        assert "interrupted while step(s) waited for pool(s) llm" in second.output
        assert first.finish() == 0, first.output[-3000:]
        os.environ["DAGSTER_HOME"] = str(Path(env["AUTOINTERP_HOME"]) / "dagster")
        try:
            with DagsterInstance.get() as instance:
                canceled = [r for r in instance.get_runs() if r.status == DagsterRunStatus.CANCELED]
                assert [r.job_name for r in canceled] == ["explain_job"]
                assert instance.event_log_storage.get_concurrency_info("llm").claimed_slots == []
        finally:
            os.environ.pop("DAGSTER_HOME")
    finally:
        server.stop()


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_chaos_daemon_path_fails_a_killed_run_worker_and_retries_it(executor, tmp_path, tiny_model_dir):
    """The UI's path on a fresh home: the sensor requests the inputs and the SAE's cache, the automation the rest,
    run by run. The run worker executing the explanations is killed (with its step process, on the multiprocess
    executor); the run is failed (by the code server, which saw its child die, or by run monitoring through
    LocalRunLauncher), the retry daemon re-executes it from the failed step, and the automation goes on to the
    SAE's summary."""
    env = make_project(tmp_path, tiny_model_dir)
    home = Path(env["AUTOINTERP_HOME"])
    shutil.rmtree(home / "saes" / "run-b")  # one SAE: fewer runs
    config = json.loads(Path(env["AUTOINTERP_CONFIG"]).read_text())
    config["instance"] = {"monitor_interval_s": 2, "free_slots_after_s": 1}
    config["executor"] = {"kind": executor}
    config["coders"]["latent_ranges"] = 1  # one partition a stage: fewer runs, each a process importing the project
    Path(env["AUTOINTERP_CONFIG"]).write_text(json.dumps(config))
    key = "tiny/layers.0/run-a"
    server = judge_server()
    server.enqueue(Fault.hang(60))  # the first explanation hangs: its run is in the explanations step for a minute
    env = {**env, "AUTOINTERP_LLM_BASE_URL": server.base_url, "AUTOINTERP_LLM_TIMEOUT_S": "120"}
    deadline = time.monotonic() + 600
    ui = None
    try:
        ui, _ = start_ui(env)
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        with DagsterInstance.get() as instance:

            def explaining():
                for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
                    steps = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_START).records
                    if any(r.event_log_entry.step_key == "explanations" for r in steps):
                        return run
                return None

            while (victim := explaining()) is None or not server.requests[2:]:
                assert time.monotonic() < deadline and ui.poll() is None, "no explanations run started"
                time.sleep(0.5)
            worker = psutil.Process(run_process(instance, victim.run_id).pid)
            children = worker.children(recursive=True)  # step processes; log tails of the compute log manager
            steps = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
            assert bool(steps) == (executor == "multiprocess"), f"{executor}: the run worker's children {children}"
            for process in [*children, worker]:
                process.kill()  # SIGKILL, as the OOM killer or a closed container would
            while not instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey("sae_summary"), asset_partitions=[key]), limit=1).records:
                assert time.monotonic() < deadline, "the automation did not reach the SAE summary"
                assert ui.poll() is None, "dagster dev stopped"
                time.sleep(1)
            killed = instance.get_run_by_id(victim.run_id)
            assert killed.status == DagsterRunStatus.FAILURE
            retries = [r for r in instance.get_runs() if r.tags.get("dagster/parent_run_id") == victim.run_id]
            assert [r.status for r in retries] == [DagsterRunStatus.SUCCESS]
    finally:
        if ui is not None:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=60)
        os.environ.pop("DAGSTER_HOME", None)
        server.stop()
    one_sae = [table for table in KEYS if table not in ("latent_matches", "sae_similarity")]  # nothing to match
    found = table_rows(env, one_sae)
    for table in one_sae:
        keys = [tuple(r[c] for c in KEYS[table]) for r in found[table]]
        assert len(set(keys)) == len(keys), f"{table}: {len(keys) - len(set(keys))} rows duplicated"
    assert found["examples"] and found["scores"]
    assert len([r for r in found["explanations"] if r["backend"] == "openai"]) == 1  # one latent a range
    assert max(paid_answers(env).values()) == 1

