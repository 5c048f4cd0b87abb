"""How close the LLM client gets to its concurrency limit against a server with fixed latency.

With latency L and concurrency C the best possible rate is C / L requests per second;
efficiency is the achieved rate divided by that, so client overhead (threads, the SDK,
the DuckDB cache and call log) shows up as the shortfall below 1. The default request
count is a whole number of rounds of C (256 = 16 x 16) so that a half-empty last round
does not count as overhead. One warm-up round first creates the store's tables and the
HTTP connections, one-off costs of a run rather than of each request.

Then the same through a pool of `--servers` stub servers (core/llm/pool.py), each with latency L and a limit of
C requests in flight: the pool's capacity is servers x C / L, and `llm_pool_efficiency` is the achieved rate
over it (the routing's overhead on top of the client's).

    .venv/bin/python bench/bench_llm.py [--requests 256] [--concurrency 16] [--latency 0.2] [--servers 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.llm import ChatRequest, LLMClient, OpenAIBackend, ServerPool  # noqa: E402
from autointerp_dagster.core.store import ResultsStore  # noqa: E402
from tests.openai_stub_server import StubLLMServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--servers", type=int, default=3)
    args = parser.parse_args()

    requests = [_request(f"explain latent {i}") for i in range(args.requests)]
    server = StubLLMServer(reply="a short explanation", latency_s=args.latency)
    with tempfile.TemporaryDirectory() as tmp, server:
        store = ResultsStore(Path(tmp) / "bench.duckdb")  # fresh, so nothing is cached
        client = LLMClient(OpenAIBackend(server.base_url, "stub-model"), store, concurrency=args.concurrency)
        client.complete([_request(f"warm-up {i}") for i in range(args.concurrency)])
        start = time.perf_counter()
        results = client.complete(requests)
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results) and server.call_count == args.requests + args.concurrency

    rate = args.requests / elapsed
    print(f"requests={args.requests}")
    print(f"concurrency={args.concurrency}")
    print(f"latency_s={args.latency}")
    print(f"elapsed_s={elapsed:.3f}")
    print(f"requests_per_s={rate:.2f}")
    print(f"llm_concurrency_efficiency={rate / (args.concurrency / args.latency):.3f}")

    pool_requests = [_request(f"pooled latent {i}") for i in range(args.requests * args.servers)]
    # Each replica in a process of its own, as real servers are: in this process they would share its GIL.
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    processes = [context.Process(target=_serve, args=(args.latency, urls, stop)) for _ in range(args.servers)]
    for process in processes:
        process.start()
    servers = [urls.get(timeout=120) for _ in processes]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = ResultsStore(Path(tmp) / "bench.duckdb")
            pool = ServerPool([(url, args.concurrency) for url in servers], "stub-model")
            client = LLMClient(pool, store, concurrency=pool.max_concurrency)
            client.complete([_request(f"pool warm-up {i}") for i in range(pool.max_concurrency)])
            start = time.perf_counter()
            results = client.complete(pool_requests)
            elapsed = time.perf_counter() - start
            assert all(r.ok for r in results)
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # a server that did not stop is killed by its pid
                process.kill()
    capacity = args.servers * args.concurrency / args.latency
    pool_rate = len(pool_requests) / elapsed
    print(f"pool_servers={args.servers}")
    print(f"pool_requests_per_s={pool_rate:.2f}")
    print(f"pool_capacity_requests_per_s={capacity:.2f}")
    print(f"llm_pool_efficiency={pool_rate / capacity:.3f}")


def _serve(latency: float, urls, stop) -> None:
    with StubLLMServer(reply="a short explanation", latency_s=latency) as server:
        urls.put(server.base_url)
        stop.wait()


def _request(prompt: str) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": prompt}], max_tokens=32, purpose="bench")


if __name__ == "__main__":
    main()
