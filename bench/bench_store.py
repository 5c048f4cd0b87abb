"""Many writers, one results store: do eight step processes that share the store keep their request rate?

Eight processes (like eight explanation steps on a Celery worker or a machine's cores) each send requests
through the project's LLMClient to one stub OpenAI server on 127.0.0.1 (fixed latency, `--in-flight` requests
in flight a process), and the client writes every answer to the response cache and call log as it runs. The
same work runs three times in one go: with no store (no cache, no log: the ceiling), with the Parquet backend
(core/store/parquet.py), and with the DuckDB file that writers take turns at. `store_writers_efficiency` is the
Parquet backend's rate over the rate with no store; `store_lock_errors` counts requests that failed or writers
that died on the store (a lock, a half-written file); `store_rows_lost` answers missing from the call log.

    .venv/bin/python bench/bench_store.py [--processes 8] [--in-flight 32] [--requests 320] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.llm import ChatRequest, LLMClient, OpenAIBackend  # noqa: E402
from autointerp_dagster.core.store import ParquetStore, ResultsStore  # noqa: E402
from tests.openai_stub_server import StubLLMServer  # noqa: E402


def writer(backend: str, location: str, url: str, worker: int, requests: int, in_flight: int, ready, start,
           done) -> None:
    store = {"none": None, "parquet": lambda: ParquetStore(location),
             "duckdb": lambda: ResultsStore(location)}[backend]
    client = LLMClient(OpenAIBackend(url, "stub-model", timeout_s=60), store() if store else None,
                       concurrency=in_flight)
    batch = [ChatRequest([{"role": "user", "content": f"{backend} writer {worker} request {i}"}], max_tokens=8,
                         purpose="bench") for i in range(requests)]
    ready.put(worker)
    start.wait()
    results = client.complete(batch)
    done.put(sum(not r.ok for r in results))


def run(backend: str, location: str, url: str, args) -> tuple[float, int]:
    """(requests per second over all writers, failed requests + writers that died)."""
    context = multiprocessing.get_context("spawn")
    ready, start, done = context.Queue(), context.Event(), context.Queue()
    workers = [context.Process(target=writer, args=(backend, location, url, w, args.requests, args.in_flight,
                                                    ready, start, done)) for w in range(args.processes)]
    for w in workers:
        w.start()
    for _ in workers:  # every process has imported the project and built its client
        ready.get(timeout=300)
    began = time.perf_counter()
    start.set()
    failed = 0
    for _ in workers:
        try:
            failed += done.get(timeout=600)
        except Exception:  # a writer that died never reports
            failed += args.requests
    elapsed = time.perf_counter() - began
    for w in workers:
        w.join(timeout=60)
        if w.is_alive():  # a writer that hangs is killed by its pid, not left behind
            w.kill()
    return args.processes * args.requests / elapsed, failed + sum(w.exitcode != 0 for w in workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--requests", type=int, default=320, help="a process")
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    ideal = args.processes * args.in_flight / args.latency
    rates, errors = {}, {}
    with StubLLMServer(reply="a short explanation", latency_s=args.latency) as server, \
            tempfile.TemporaryDirectory() as tmp:
        for backend in ("none", "parquet", "duckdb"):
            location = str(Path(tmp) / ("results" if backend == "parquet" else "results.duckdb"))
            rates[backend], errors[backend] = run(backend, location, server.base_url, args)
            print(f"{backend:8} {rates[backend]:8.1f} requests/s ({rates[backend] / ideal:.2f} of the ideal "
                  f"{ideal:.0f}), {errors[backend]} failed", flush=True)
        logged = ParquetStore(Path(tmp) / "results").query("SELECT count(*) AS n FROM llm_calls WHERE status = 'ok'")
        lost = args.processes * args.requests - errors["parquet"] - logged.column(0)[0].as_py()
    print(f"processes={args.processes}")
    print(f"in_flight_per_process={args.in_flight}")
    print(f"latency_s={args.latency}")
    print(f"duckdb_writers_efficiency={rates['duckdb'] / rates['none']:.3f}")
    print(f"store_rows_lost={lost}")
    print(f"store_lock_errors={errors['parquet']}")
    print(f"store_writers_efficiency={rates['parquet'] / rates['none']:.3f}")


if __name__ == "__main__":
    main()
