"""The pipeline's own work per latent, with a judge that answers at once: how many latents a second a worker
explains and scores when the LLM is not the limit, and what that projects to for a 131k-latent SAE and 1M latents.

After `make run` (it reuses the embedded default's corpus, SAEs and activation caches): a copy of the project home
(the results file copied, the large folders linked) runs `autointerp run --stage explain --stage score` on one
embedded SAE with the server judge's defaults (40 explainer examples, 50 + 50 judged per scorer, 5 a prompt, own
and shuffled explanations, the baseline judged by detection) and `--latents-per-range` latents a range, against
the scripted judge of the tests on a stub OpenAI server in another process (it answers at once). The subject-model
scorers (surprisal, intervention: the `model` pool's GPU work) are left out. Each step's time comes from the run's
Dagster events: `examples` (sampling), `explanations` (the explainer's requests), `scores` (detection, fuzzing and
embedding scoring).

Then the LLM client alone: `--requests` chat requests against the stub server in another process, 16 in flight,
and the CPU time this process spent on them (`client_cpu_ms_per_request`: at 1 ms, one core feeds a server pool
1,000 requests a second); and the same with a backend that answers in process (`client_own_cpu_ms_per_request`:
the client's own share, without HTTP and the openai SDK).

    .venv/bin/python bench/bench_scale.py [--latents-per-range 16] [--requests 2000] [--workers 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.llm import ChatRequest, LLMClient, OpenAIBackend  # noqa: E402
from autointerp_dagster.core.llm.types import BackendReply  # noqa: E402
from autointerp_dagster.core.store import ResultsStore  # noqa: E402

SAE = "gemma-3-270m/layers.6/embedded-topk"
LINKED = ("corpus", "models", "saes")  # read, never written, by the runs of a copy
STEPS = ("examples", "explanations", "scores")


def serve(queue, scripted: bool) -> None:
    """The stub server in its own process, so its CPU is not the client's."""
    from tests.conftest import scripted_judge
    from tests.openai_stub_server import StubLLMServer

    scripted_judge.failed_once = True  # no deliberately unparseable first answer here
    server = StubLLMServer(reply=scripted_judge if scripted else "a short explanation",
                           models=("scripted-judge",)).start()
    queue.put(server.base_url)
    time.sleep(24 * 3600)


def start_server(scripted: bool) -> tuple[multiprocessing.Process, str]:
    queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=serve, args=(queue, scripted), daemon=True)
    process.start()
    return process, queue.get(timeout=60)


def copied_home(home: Path, tmp: Path) -> tuple[Path, dict[str, str]]:
    """A project home under `tmp` that shares `home`'s corpus, coders, models and caches (linked) and starts from a
    copy of its results file and a fresh Dagster instance; and this environment (the settings), pointed at it."""
    copy = tmp / "home"
    copy.mkdir()
    for name in LINKED:
        if (home / name).is_dir():
            (copy / name).symlink_to(home.resolve() / name)
    (copy / "cache").mkdir()  # a folder of its own, its caches linked: caches a run adds stay in the copy
    if (home / "cache").is_dir():
        for entry in (home.resolve() / "cache").iterdir():
            (copy / "cache" / entry.name).symlink_to(entry)
    shutil.copyfile(home / "autointerp.duckdb", copy / "autointerp.duckdb")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # the settings, but this home
    return copy, {**env, "AUTOINTERP_HOME": str(copy)}


def pipeline_rates(home: Path, per_range: int) -> dict[str, float]:
    """Runs explain and score on a copy of `home`; seconds and latents of each step."""
    from dagster import DagsterEventType, DagsterInstance

    process, url = start_server(scripted=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy, env = copied_home(home, Path(tmp))
        env.update({"AUTOINTERP_LLM_BACKEND": "openai",
                    "AUTOINTERP_LLM_MODEL": "scripted-judge", "AUTOINTERP_LLM_BASE_URL": url,
                    "AUTOINTERP_SAMPLING_LATENTS_PER_RANGE": str(per_range),
                    "AUTOINTERP_SUBJECT_SCORERS_SCORERS": "[]"})
        autointerp = Path(sys.executable).with_name("autointerp")
        started = time.perf_counter()
        done = subprocess.run([str(autointerp), "run", "--sae", SAE, "--stage", "explain", "--stage", "score"], env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        process.terminate()
        if done.returncode != 0:
            raise SystemExit(f"autointerp run failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        os.environ["DAGSTER_HOME"] = str(copy / "dagster")
        seconds = dict.fromkeys(STEPS, 0.0)
        with DagsterInstance.get() as instance:
            for run in instance.get_runs():
                begun = {}
                for record in instance.all_logs(run.run_id, of_type={DagsterEventType.STEP_START,
                                                                     DagsterEventType.STEP_SUCCESS}):
                    step = record.step_key
                    if record.dagster_event.event_type == DagsterEventType.STEP_START:
                        begun[step] = record.timestamp
                    elif step in seconds:
                        seconds[step] += record.timestamp - begun[step]
        store = ResultsStore(copy / "autointerp.duckdb")
        explained = store.query("SELECT count(DISTINCT latent) AS n FROM explanations WHERE sae = ? "
                                "AND backend = 'openai' AND status = 'ok'", [SAE]).to_pylist()[0]["n"]
        judgments = store.query("SELECT count(*) AS n FROM judgments WHERE sae = ? AND scorer != 'embedding'",
                                [SAE]).to_pylist()[0]["n"]
        match = re.search(r"Done in (\d+) s", done.stdout)
    return {"latents": explained, "judgments": judgments, "wall_s": wall,
            "run_s": float(match.group(1)) if match else wall, **{f"{k}_s": v for k, v in seconds.items()}}


def client_cpu_ms(requests: int) -> float:
    """CPU milliseconds this process spends per chat request (16 in flight, no cache hits)."""
    process, url = start_server(scripted=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            client = LLMClient(OpenAIBackend(url, "stub-model"), ResultsStore(Path(tmp) / "b.duckdb"), concurrency=16)
            client.complete([_request(f"warm-up {i}") for i in range(32)])
            batch = [_request(f"latent {i}: " + "example text " * 80) for i in range(requests)]
            before = time.process_time()
            results = client.complete(batch)
            spent = time.process_time() - before
            assert all(r.ok for r in results)
    finally:
        process.terminate()
    return spent / requests * 1000


class InstantBackend:
    """A backend that answers in this process at once: what the client costs without HTTP and the SDK."""

    name, model, max_concurrency = "instant", "instant-model", None
    identity = {"backend": "instant", "model": "instant-model"}

    def generate(self, request: ChatRequest) -> BackendReply:
        return BackendReply("a short explanation", None, tokens_in=100, tokens_out=3)


def client_own_cpu_ms(requests: int) -> float:
    """CPU milliseconds per request the client spends itself (cache keys, threads, journal, call log)."""
    with tempfile.TemporaryDirectory() as tmp:
        client = LLMClient(InstantBackend(), ResultsStore(Path(tmp) / "b.duckdb"), concurrency=16)
        client.complete([_request(f"warm-up {i}") for i in range(32)])
        batch = [_request(f"latent {i}: " + "example text " * 80) for i in range(requests)]
        before = time.process_time()
        assert all(r.ok for r in client.complete(batch))
        return (time.process_time() - before) / requests * 1000


def _request(text: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], max_tokens=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents-per-range", type=int, default=16, help="8 ranges: 128 latents by default")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8, help="workers the 1M-latent projection assumes")
    args = parser.parse_args()
    home = load_settings().home
    if not (home / "autointerp.duckdb").exists():
        raise SystemExit(f"no results in {home}: run `make run` first")
    rates = pipeline_rates(home, args.latents_per_range)
    cpu = client_cpu_ms(args.requests)
    n = rates["latents"]
    explain_rate = n / rates["explanations_s"]
    scoring_rate = n / rates["scores_s"]
    per_latent_s = (rates["examples_s"] + rates["explanations_s"] + rates["scores_s"]) / n
    print(f"latents={n}")
    print(f"judgments={rates['judgments']}")
    print(f"judgments_per_latent={rates['judgments'] / n:.0f}")
    for step in STEPS:
        print(f"{step}_step_s={rates[step + '_s']:.1f}")
    print(f"run_s={rates['run_s']:.0f}")
    print(f"sampling_latents_per_s={n / rates['examples_s']:.2f}")
    print(f"explain_latents_per_s={explain_rate:.2f}")
    print(f"scoring_latents_per_s={scoring_rate:.2f}")
    print(f"hours_for_131k_latents_one_worker={131_072 * per_latent_s / 3600:.1f}")
    print(f"hours_for_1m_latents_{args.workers}_workers={1_000_000 * per_latent_s / args.workers / 3600:.1f}")
    print(f"client_cpu_ms_per_request={cpu:.2f}")
    print(f"client_own_cpu_ms_per_request={client_own_cpu_ms(args.requests):.2f}  # without HTTP and the SDK")


if __name__ == "__main__":
    main()
