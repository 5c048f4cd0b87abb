"""A pool of OpenAI-compatible servers (core/llm/pool.py) against real stub servers on 127.0.0.1: requests
spread by requests in flight, a killed server's requests go to the others, a 429 rests that server alone."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.llm import ChatRequest, LLMClient, ServerPool, build_backend, cache_key
from autointerp_dagster.core.llm.types import BackendError
from autointerp_dagster.core.store import ResultsStore
from tests.openai_stub_server import Fault, StubLLMServer


def _requests(n: int) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"explain latent {i}"}], max_tokens=8) for i in range(n)]


def _prompts(server: StubLLMServer) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.answered]


@pytest.fixture
def servers():
    stubs = [StubLLMServer(reply="an explanation", latency_s=0.05).start() for _ in range(3)]
    yield stubs
    for stub in stubs:
        stub.stop()


def test_pool_survives_a_server_killed_mid_run_each_request_answered_once(servers, tmp_path):
    store = ResultsStore(tmp_path / "results.duckdb")
    pool = ServerPool([(s.base_url, 4) for s in servers], "stub-model", timeout_s=5, max_retries=5)
    client = LLMClient(pool, store, concurrency=pool.max_concurrency)
    requests = _requests(240)
    victim = servers[1]

    def kill_after_some_answers():
        while len(victim.answered) < 20:
            time.sleep(0.01)
        victim.kill()

    killer = threading.Thread(target=kill_after_some_answers)
    killer.start()
    results = client.complete(requests)
    killer.join()

    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    answered = Counter(p for s in servers for p in _prompts(s))
    assert sorted(answered) == sorted(r.messages[-1]["content"] for r in requests)
    assert set(answered.values()) == {1}  # every request answered once: none lost, none paid twice
    assert 20 <= len(victim.answered) < 240 // 3  # it served its share until it died, then none
    assert min(len(servers[0].answered), len(servers[2].answered)) > 240 // 3
    logged = store.query("SELECT status, count(*) AS n, sum(attempts)::INT AS tries FROM llm_calls GROUP BY ALL")
    [calls] = logged.to_pylist()
    assert calls["status"] == "ok" and calls["n"] == 240 and calls["tries"] > 240  # the victim's were sent again
    again = LLMClient(pool, store, concurrency=pool.max_concurrency).complete(requests)
    assert all(r.cached for r in again) and sum(len(s.answered) for s in servers) == 240


def test_a_429_rests_that_server_alone_for_its_retry_after(servers):
    slow_down = servers[0]
    slow_down.enqueue(Fault.rate_limit(retry_after=30))  # its first request: come back in 30 s
    pool = ServerPool([(s.base_url, 1 if s is slow_down else 2) for s in servers], "stub-model", timeout_s=5)
    client = LLMClient(pool, None, concurrency=pool.max_concurrency)
    started = time.monotonic()
    results = client.complete(_requests(60))
    assert all(r.ok for r in results) and time.monotonic() - started < 15  # nobody waited the 30 s
    assert slow_down.call_count == 1 and not slow_down.answered  # asked once, then left alone
    assert len(servers[1].answered) + len(servers[2].answered) == 60


def test_least_in_flight_within_each_servers_limit(servers):
    for stub in servers:
        stub.latency_s = 0.2
    pool = ServerPool([(servers[0].base_url, 1), (servers[1].base_url, 4), (servers[2].base_url, 4)], "stub-model")
    peaks = Counter()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for url, n in pool.in_flight().items():
                peaks[url] = max(peaks[url], n)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    results = LLMClient(pool, None, concurrency=pool.max_concurrency).complete(_requests(45))
    stop.set()
    watcher.join()
    assert all(r.ok for r in results)
    assert [peaks[u] for u in pool.in_flight()] == [1, 4, 4]  # each server's own limit, reached, never passed
    assert len(servers[0].answered) < len(servers[1].answered) and len(servers[2].answered) >= 15


def test_a_request_the_server_rejects_is_not_sent_elsewhere(servers):
    for stub in servers:
        stub.enqueue(Fault.http(400, "bad request: max_tokens too large"))
    pool = ServerPool([(s.base_url, 1) for s in servers], "stub-model")
    with pytest.raises(BackendError, match="HTTP 400"):
        pool.generate(_requests(1)[0])
    assert sum(s.call_count for s in servers) == 1


def test_every_server_down_fails_the_request_with_each_reason(servers):
    for stub in servers:
        stub.kill()
    pool = ServerPool([(s.base_url, 1) for s in servers], "stub-model", timeout_s=2, max_retries=2)
    with pytest.raises(BackendError, match="3 tries failed") as failure:
        pool.generate(_requests(1)[0])
    assert failure.value.retryable


def test_settings_build_a_pool_whose_cache_key_ignores_the_replica(servers):
    environ = {"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_MODEL": "stub-model", "AUTOINTERP_LLM_BASE_URLS":
               f"[{servers[0].base_url}, {{url: '{servers[1].base_url}', concurrency: 3}}]",
               "AUTOINTERP_LLM_CONCURRENCY": "5"}
    config = load_settings(None, environ=environ).llm
    assert config.servers == [(servers[0].base_url, 5), (servers[1].base_url, 3)] and config.requests_in_flight == 8
    backend = build_backend(config, "unused")
    assert isinstance(backend, ServerPool) and backend.max_concurrency == 8
    other_replicas = build_backend(config.model_copy(update={"base_urls": config.base_urls[:1]}), "unused")
    request = _requests(1)[0]
    assert cache_key(backend.identity, request) == cache_key(other_replicas.identity, request)
